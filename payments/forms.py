"""Forms of the transaction pages: the search form's POST → GET step and the download options."""

from __future__ import annotations

from django import forms
from django.http import QueryDict
from django.utils.translation import gettext_lazy as _

from .cards import looks_like_pan, luhn_valid, normalise_pan
from .filtersets import TransactionFilterSet, make_card_ref, read_card_ref

PAGING_PARAMS = ("after", "before")
FULL_PAN_INVALID = _("This card number is not valid. Check it and search again.")


class ExportForm(forms.Form):
    file_format = forms.ChoiceField(label=_("File format"), choices=[("csv", "CSV"), ("xlsx", "Excel (XLSX)")])
    encoding = forms.ChoiceField(label=_("CSV encoding"), choices=[("utf-8", "UTF-8"), ("gbk", "GBK")], required=False)
    scope = forms.ChoiceField(choices=[("history", "history"), ("today", "today")], required=False)


def search_params(data, *, from_form: bool = False) -> tuple[QueryDict, str | None]:
    """The query string for a search, with a full card number swapped for a signed ``card_ref``.

    A full number never reaches a URL (and so neither links, browser history nor access logs).
    Returns the parameters and an error message when the number was unusable (it is dropped).
    ``from_form``: the data comes from the search form, where the card field shows the masked
    number of the current ``card_ref``; clearing the field ends the card search.
    """
    names = set(TransactionFilterSet.base_filters)
    out = QueryDict(mutable=True)
    error = None
    for name in names - {"card", "card_ref"}:
        value = (data.get(name) or "").strip()
        if value:
            out[name] = value
    card = normalise_pan(data.get("card") or "")
    ref = data.get("card_ref") or ""
    if "*" in card:
        # The masked number shown after a search: keep searching the same card.
        known = read_card_ref(ref) if ref else None
        if known and known["m"] == card:
            out["card_ref"] = ref
    elif looks_like_pan(card):
        if luhn_valid(card):
            out["card_ref"] = make_card_ref(card)
        else:
            error = FULL_PAN_INVALID
    elif card:
        out["card"] = card
    elif ref and not from_form:
        out["card_ref"] = ref
    return out, error


def full_pan_in(data) -> bool:
    """Whether a request's parameters carry what looks like a full card number."""
    return looks_like_pan(normalise_pan(data.get("card") or ""))


def style_filter_form(form: forms.Form, *, card_display: str = "") -> None:
    """Bootstrap classes and HTML5 input types on the FilterSet's form."""
    for name, field in form.fields.items():
        widget = field.widget
        if isinstance(widget, forms.HiddenInput):
            continue
        if isinstance(widget, forms.Select):
            widget.attrs["class"] = "form-select form-select-sm"
        else:
            widget.attrs["class"] = "form-control form-control-sm"
        if isinstance(field, forms.DateField):
            widget.input_type = "date"
        if name == "card":
            widget.attrs["autocomplete"] = "off"
            widget.attrs["inputmode"] = "numeric"
            if card_display and not form.data.get("card"):
                widget.attrs["value"] = card_display
