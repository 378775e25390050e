"""The one FilterSet of the ledger, shared by the pages, the downloads and the REST API.

Dates are Beijing calendar days of ``txn_time``; a query spans at most one year, and every date lies
in the seven years of retention up to tomorrow (``allowed_date_range``). Without dates
(and without an order id or queryId, which are exact lookups) the last seven days are searched.
Amount bounds are in yuan and compared in fen. ``card`` takes the last four digits or the full
number (matched through the keyed hash); ``card_ref`` is the signed stand-in the pages put in
links instead of a full number.
"""

from __future__ import annotations

import copy
from datetime import date, timedelta

import django_filters
from django import forms
from django.core import signing
from django.forms.renderers import Jinja2
from django.utils.translation import gettext_lazy as _

from portal.accounts.models import Organisation

from . import settlement
from .cards import card_hash, looks_like_pan, luhn_valid, mask_pan, normalise_pan
from .choices import ChannelType, TxnStatus, TxnType
from .money import yuan_to_fen

DEFAULT_HISTORY_DAYS = 7
CARD_REF_SALT = "payments.card_ref"
CARD_REF_MAX_AGE = 12 * 3600

SORT_CHOICES = [
    ("-txn_time", _("Newest first")),
    ("txn_time", _("Oldest first")),
    ("-amount", _("Largest amount first")),
    ("amount", _("Smallest amount first")),
]
SORT_VALUES = {value for value, _label in SORT_CHOICES}


# Transactions are kept for seven years (domain rules); a search reaches no further back, and no
# further ahead than tomorrow: after 23:00 Beijing time the open settlement day is tomorrow's date.
RETENTION_YEARS = 7
DAYS_AHEAD = 1


def add_years(day: date, years: int) -> date:
    """``day`` moved by whole ``years`` (29 February becomes 28 February in a common year)."""
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)


def add_one_year(day: date) -> date:
    return add_years(day, 1)


def allowed_date_range(today: date | None = None) -> tuple[date, date]:
    """The first and last Beijing day a search may name: the retention period up to tomorrow.

    Every date of a search is checked against it before any arithmetic, so that neither the default
    ranges nor the day bounds of ``settlement`` can leave the calendar (year 1 to 9999).
    """
    today = today or settlement.business_today()
    return add_years(today, -RETENTION_YEARS), today + timedelta(days=DAYS_AHEAD)


def make_card_ref(pan: str) -> str:
    """A signed token carrying the keyed hash and the masked form of ``pan`` (never the number)."""
    return signing.dumps({"h": card_hash(pan), "m": mask_pan(pan)}, salt=CARD_REF_SALT, compress=True)


def _sign_card_ref(data: dict) -> str:
    return signing.dumps({"h": data["h"], "m": data["m"]}, salt=CARD_REF_SALT, compress=True)


def refresh_card_ref(token: str) -> str | None:
    """A fresh token for a card_ref we signed earlier, however old (a queued download may wait
    longer than a search token lives); None if the signature is not ours."""
    try:
        data = signing.loads(token, salt=CARD_REF_SALT)
    except signing.BadSignature:
        return None
    if not isinstance(data, dict) or not {"h", "m"} <= set(data):
        return None
    return _sign_card_ref(data)


def read_card_ref(token: str) -> dict | None:
    try:
        data = signing.loads(token, salt=CARD_REF_SALT, max_age=CARD_REF_MAX_AGE)
    except signing.BadSignature:
        return None
    if not isinstance(data, dict) or not {"h", "m"} <= set(data):
        return None
    return data


class TransactionFilterForm(forms.Form):
    """Cross-field rules: the one-year cap, ordered bounds, and what a card value may be.

    Its widgets render through Django's own Jinja2 widget templates: the same HTML as the default
    renderer at a fraction of the cost (the search form's dozen widgets are on every list page).
    """

    mode = "history"
    default_renderer = Jinja2()  # one instance: it holds the compiled templates

    def clean_card(self):
        value = normalise_pan(self.cleaned_data.get("card") or "")
        if not value:
            return ""
        if len(value) == 4 and value.isdigit():
            return value
        if looks_like_pan(value) and luhn_valid(value):
            return value
        raise forms.ValidationError(_("Enter the last four digits of the card or the full card number."), code="card")

    def clean_card_ref(self):
        token = self.cleaned_data.get("card_ref") or ""
        if not token:
            return None
        data = read_card_ref(token)
        if data is None:
            raise forms.ValidationError(_("The card search has expired; enter the card number again."), code="card")
        return data

    def _clean_day(self, name: str) -> date | None:
        """A date of the search, refused outside ``allowed_date_range`` with the range in the message."""
        value = self.cleaned_data.get(name)
        if value is None:
            return None
        first, last = allowed_date_range()
        if not first <= value <= last:
            raise forms.ValidationError(
                _("Enter a date from %(first)s to %(last)s: transactions are kept for %(years)s years."),
                code="date_range",
                params={"first": first.isoformat(), "last": last.isoformat(), "years": RETENTION_YEARS},
            )
        return value

    def clean_date_from(self):
        return self._clean_day("date_from")

    def clean_date_to(self):
        return self._clean_day("date_to")

    def clean_settle_date(self):
        return self._clean_day("settle_date")

    def clean(self):
        cleaned = super().clean()
        low, high = cleaned.get("amount_min"), cleaned.get("amount_max")
        if low is not None and high is not None and low > high:
            self.add_error("amount_max", _("The maximum amount must not be below the minimum amount."))
        if self.mode == "today":
            return cleaned
        first, last = cleaned.get("date_from"), cleaned.get("date_to")
        if "date_from" in self.errors or "date_to" in self.errors:
            return cleaned
        # Both dates (when given) are inside the allowed range: the defaults below stay inside it too.
        exact = cleaned.get("order_id") or cleaned.get("query_id")
        today = settlement.business_today()
        oldest, _latest = allowed_date_range(today)
        if first is None and last is None and not exact:
            first, last = today - timedelta(days=DEFAULT_HISTORY_DAYS - 1), today
        elif first is not None and last is None:
            last = min(max(today, first), add_one_year(first) - timedelta(days=1))
        elif last is not None and first is None:
            first = max(oldest, last - timedelta(days=DEFAULT_HISTORY_DAYS - 1))
        if first is not None and last is not None:
            if first > last:
                self.add_error("date_to", _("The end date must not be before the start date."))
            elif last >= add_one_year(first):
                self.add_error(
                    "date_to", _("A query can cover at most one year. Narrow the date range and search again.")
                )
        cleaned["date_from"], cleaned["date_to"] = first, last
        return cleaned


class TransactionFilterSet(django_filters.FilterSet):
    date_from = django_filters.DateFilter(label=_("From"), method="_applied_later")
    date_to = django_filters.DateFilter(label=_("To"), method="_applied_later")
    order_id = django_filters.CharFilter(label=_("Order ID"), max_length=40)
    query_id = django_filters.CharFilter(label=_("Query ID"), max_length=21)
    txn_type = django_filters.ChoiceFilter(label=_("Type"), choices=TxnType.choices)
    status = django_filters.ChoiceFilter(label=_("Status"), choices=TxnStatus.choices)
    channel = django_filters.ChoiceFilter(label=_("Channel"), field_name="channel_type", choices=ChannelType.choices)
    amount_min = django_filters.NumberFilter(
        label=_("Minimum amount (yuan)"), method="_applied_later", min_value=0, max_digits=14, decimal_places=2
    )
    amount_max = django_filters.NumberFilter(
        label=_("Maximum amount (yuan)"), method="_applied_later", min_value=0, max_digits=14, decimal_places=2
    )
    card = django_filters.CharFilter(label=_("Card (last four or full number)"), method="_applied_later", max_length=25)
    card_ref = django_filters.CharFilter(widget=forms.HiddenInput, method="_applied_later", max_length=500)
    # A text box for the merchant number: an acquirer may have thousands of merchants.
    merchant = django_filters.ModelChoiceFilter(
        label=_("Merchant number"),
        to_field_name="code",
        queryset=lambda request: _merchant_choices(request),
        widget=forms.TextInput,
        error_messages={"invalid_choice": _("None of your merchants has this merchant number.")},
    )
    settle_date = django_filters.DateFilter(label=_("Settlement date"))
    sort = django_filters.ChoiceFilter(label=_("Sort"), choices=SORT_CHOICES, method="_applied_later", empty_label=None)

    class Meta:
        form = TransactionFilterForm
        fields: list[str] = []

    def __init__(self, data=None, *args, mode: str = "history", **kwargs):
        super().__init__(data, *args, **kwargs)
        self.mode = mode
        self.form.mode = mode
        if mode == "today":
            for name in ("date_from", "date_to", "settle_date"):
                self.form.fields.pop(name, None)
        if self._shows_merchant_filter():
            # The one field that depends on the user: the form class is shared (see get_form_class).
            self.form.fields["merchant"].queryset = _merchant_choices(self.request)
        else:
            self.form.fields.pop("merchant", None)

    @classmethod
    def _shared_form_class(cls):
        form_class = cls.__dict__.get("_form_class")
        if form_class is None:
            fields = {}
            for name, filter_ in cls.base_filters.items():
                filter_ = copy.deepcopy(filter_)
                filter_.parent = None  # no request: the merchant field gets no merchant at all
                fields[name] = filter_.field
            form_class = type(f"{cls.__name__}Form", (cls._meta.form,), fields)
            cls._form_class = form_class
        return form_class

    def get_form_class(self):
        """The form class, built once per process instead of once per request (a dozen fields with
        their validators): nothing in it depends on the request but the merchant field's choices,
        which start empty and are set on each form by ``__init__``."""
        return self._shared_form_class()

    def _shows_merchant_filter(self) -> bool:
        user = getattr(self.request, "user", None)
        org = getattr(user, "organisation", None)
        return org is not None and org.kind != "merchant"

    def _applied_later(self, queryset, name, value):
        return queryset

    @property
    def sort_order(self) -> str:
        value = self.form.cleaned_data.get("sort") if self.is_bound and self.is_valid() else None
        return value if value in SORT_VALUES else "-txn_time"

    def filter_queryset(self, queryset):
        queryset = super().filter_queryset(queryset)
        data = self.form.cleaned_data
        if self.mode == "today":
            queryset = queryset.filter(settle_date=settlement.current_settlement_day())
        elif data.get("date_from") and data.get("date_to"):
            start, end = settlement.business_day_bounds(data["date_from"], data["date_to"])
            queryset = queryset.filter(txn_time__gte=start, txn_time__lt=end)
        if data.get("amount_min") is not None:
            queryset = queryset.filter(amount__gte=yuan_to_fen(data["amount_min"]))
        if data.get("amount_max") is not None:
            queryset = queryset.filter(amount__lte=yuan_to_fen(data["amount_max"]))
        card = data.get("card")
        if card and len(card) == 4:
            queryset = queryset.filter(card_masked__endswith=card)
        elif card:
            queryset = queryset.filter(card_hash=card_hash(card))
        elif data.get("card_ref"):
            queryset = queryset.filter(card_hash=data["card_ref"]["h"])
        return queryset

    def card_display(self) -> str:
        """What the card field shows after a search: last four or the masked number, never the full one."""
        if not (self.is_bound and self.is_valid()):
            return ""
        card = self.form.cleaned_data.get("card")
        if card and len(card) > 4:
            return mask_pan(card)
        if card:
            return card
        ref = self.form.cleaned_data.get("card_ref")
        return ref["m"] if ref else ""

    def job_params(self) -> dict[str, str]:
        """The applied filter as history-mode parameters that rebuild exactly this set later.

        Dates are frozen (the default last seven days, or today's settlement day, are written out),
        and a full card number becomes a signed ``card_ref`` (keyed hash and masked form only).
        """
        if not (self.is_bound and self.is_valid()):
            raise ValueError("the filter is not valid")
        data = self.form.cleaned_data
        out: dict[str, str] = {}
        if self.mode == "today":
            day = settlement.current_settlement_day()
            out.update(settle_date=day.isoformat(), date_from=(day - timedelta(days=1)).isoformat())
            out["date_to"] = day.isoformat()
        for key in ("date_from", "date_to", "settle_date"):
            if data.get(key) and key not in out:
                out[key] = data[key].isoformat()
        for key in ("order_id", "query_id", "txn_type", "status", "channel"):
            if data.get(key):
                out[key] = str(data[key])
        for key in ("amount_min", "amount_max"):
            if data.get(key) is not None:
                out[key] = str(data[key])
        card = data.get("card")
        if card and len(card) == 4:
            out["card"] = card
        elif card:
            out["card_ref"] = make_card_ref(card)
        elif data.get("card_ref"):
            out["card_ref"] = _sign_card_ref(data["card_ref"])
        if data.get("merchant") is not None:
            out["merchant"] = data["merchant"].code
        out["sort"] = self.sort_order
        return out

    def describe(self) -> dict:
        """The applied filter for audit events and file names, without any card number."""
        if not (self.is_bound and self.is_valid()):
            return {}
        out: dict = {"mode": self.mode}
        for key, value in self.form.cleaned_data.items():
            if value in (None, "", []):
                continue
            if key == "card":
                out[key] = value if len(value) == 4 else mask_pan(value)
            elif key == "card_ref":
                out["card"] = value["m"]
            elif isinstance(value, Organisation):
                out[key] = value.code
            else:
                out[key] = str(value)
        return out


def _merchant_choices(request):
    if request is None:
        return Organisation.objects.none()
    return Organisation.objects.visible_to(request.user).merchants().order_by("code")
