"""Ledger reads: scoped lists, keyset pages, totals, a transaction's family and refund position."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from django.core.exceptions import ObjectDoesNotExist
from django.db.models import Count, Q, QuerySet, Sum
from django.shortcuts import get_object_or_404
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from portal.accounts.models import Organisation

from . import hooks, settlement
from .choices import REFUNDABLE_TYPES, REVERSAL_TYPES, ExportStatus, TxnStatus, TxnType
from .models import DEFAULT_REFUND_WINDOW_DAYS, ExportJob, MerchantProfile, Transaction

PAGE_SIZE = 50
# Online refunds are accepted up to this many days after the original payment (domain rules);
# a merchant's profile may set another window (``MerchantProfile.refund_window_days``).
REFUND_WINDOW_DAYS = DEFAULT_REFUND_WINDOW_DAYS

# Columns a list page needs; the rest of the row stays in the database.
LIST_FIELDS = (
    "id",
    "merchant_id",
    "order_id",
    "txn_time",
    "txn_type",
    "channel_type",
    "amount",
    "status",
    "resp_code",
    "query_id",
    "settle_date",
    "card_masked",
    "refunded_amount",
)


def transactions_visible_to(user) -> QuerySet[Transaction]:
    return Transaction.objects.visible_to(user)


@dataclass
class KeysetPage:
    rows: list[Transaction]
    next_cursor: str | None = None
    prev_cursor: str | None = None
    extra: dict = field(default_factory=dict)


def _sort_key(sort: str) -> tuple[str, bool]:
    column = sort.lstrip("-")
    return column, sort.startswith("-")


def encode_cursor(row: Transaction, sort: str) -> str:
    column, _desc = _sort_key(sort)
    value = getattr(row, column)
    raw = f"{value.isoformat() if isinstance(value, datetime) else value}|{row.pk}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


# Keys a cursor may carry: what a BigIntegerField / BigAutoField holds.
_BIGINT_MIN, _BIGINT_MAX = -(2**63), 2**63 - 1
_CURSOR_MAX_LENGTH = 200


def decode_cursor(token: str | None, sort: str):
    """``(value, id)`` from a cursor, or None if it is missing or malformed.

    A cursor comes from the client: anything the columns cannot hold (an id or amount past a bigint,
    a time that leaves the calendar when converted to UTC, a naive time) is malformed, so that the
    query built from it can never fail.
    """
    if not token or len(token) > _CURSOR_MAX_LENGTH:
        return None
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        value_text, pk_text = raw.rsplit("|", 1)
        pk = int(pk_text)
        column, _desc = _sort_key(sort)
        if column == "txn_time":
            value = parse_datetime(value_text)
            if value is None or timezone.is_naive(value):
                return None
            value = value.astimezone(UTC)
        else:
            value = int(value_text)
            if not _BIGINT_MIN <= value <= _BIGINT_MAX:
                return None
    except (ValueError, UnicodeDecodeError, OverflowError):
        return None
    if not 0 <= pk <= _BIGINT_MAX:
        return None
    return value, pk


def keyset_page(
    qs: QuerySet[Transaction],
    *,
    sort: str = "-txn_time",
    after: str | None = None,
    before: str | None = None,
    size: int = PAGE_SIZE,
) -> KeysetPage:
    """One page of ``qs`` ordered by ``sort`` then id, after or before a cursor.

    Keyset (seek) pagination: each page is an index range scan whatever its depth, and rows
    inserted meanwhile never shift or repeat rows across pages.
    """
    column, desc = _sort_key(sort)
    after_key = decode_cursor(after, sort)
    before_key = decode_cursor(before, sort) if after_key is None else None
    backwards = before_key is not None
    key = before_key or after_key
    # Walking forward in a descending order means "smaller than the cursor".
    go_down = desc != backwards
    if key is not None:
        value, pk = key
        op = "lt" if go_down else "gt"
        qs = qs.filter(Q(**{f"{column}__{op}": value}) | Q(**{column: value, f"id__{op}": pk}))
    order = [f"-{column}", "-id"] if go_down else [column, "id"]
    rows = list(qs.order_by(*order)[: size + 1])
    more = len(rows) > size
    rows = rows[:size]
    if backwards:
        rows.reverse()
    page = KeysetPage(rows=rows)
    if rows:
        has_next = more if not backwards else True
        has_prev = (key is not None) if not backwards else more
        page.next_cursor = encode_cursor(rows[-1], sort) if has_next else None
        page.prev_cursor = encode_cursor(rows[0], sort) if has_prev else None
    return page


def transaction_totals(qs: QuerySet[Transaction]) -> dict:
    """Count and amount (fen) of the whole filtered set, and of its successful part."""
    raw = qs.order_by().aggregate(
        n=Count("id"),
        total=Sum("amount"),
        n_success=Count("id", filter=Q(status=TxnStatus.SUCCESS)),
        total_success=Sum("amount", filter=Q(status=TxnStatus.SUCCESS)),
    )
    totals = {
        "count": raw["n"],
        "amount": raw["total"] or 0,
        "success_count": raw["n_success"],
        "success_amount": raw["total_success"] or 0,
    }
    return totals


def transaction_get(user, pk: int) -> Transaction:
    """The transaction ``pk`` if ``user`` may see it, else 404."""
    return get_object_or_404(
        transactions_visible_to(user).select_related("merchant", "merchant__merchant_profile", "acquirer", "orig"),
        pk=pk,
    )


def transaction_family(txn: Transaction) -> tuple[Transaction, list[Transaction]]:
    """The original payment and all its voids and refunds (oldest first)."""
    original = txn.orig if txn.orig_id else txn
    children = list(Transaction.objects.filter(orig_id=original.pk).order_by("txn_time", "id"))
    return original, children


@dataclass(frozen=True)
class RefundPosition:
    """Where a payment stands: ``refunded`` by the ledger, ``held`` by refunds and batch lines in flight
    (not in the ledger yet), ``remaining`` = amount − refunded − held (0 once voided or expired), and
    the last Beijing day ``until`` which it can be refunded online."""

    refundable: bool
    refunded: int
    remaining: int
    until: date | None
    expired: bool
    voided: bool
    held: int = 0


def merchant_refund_window_days(merchant: Organisation) -> int:
    """The merchant's online refund window in days: its profile's setting, else the default.

    Uses the profile loaded with ``select_related("merchant__merchant_profile")`` when there is one.
    """
    try:
        profile = merchant.merchant_profile
    except ObjectDoesNotExist:
        return REFUND_WINDOW_DAYS
    return profile.refund_window_days if profile is not None else REFUND_WINDOW_DAYS


def refund_deadline(txn: Transaction, window_days: int | None = None) -> date:
    """The last Beijing day on which ``txn`` can still be refunded online (the window ends at
    ``txn_time + window_days`` to the second; see ``refund_window_expired``). The one place this date is
    computed: the detail page, the API and the refund form all show it."""
    days = window_days if window_days is not None else merchant_refund_window_days(txn.merchant)
    return (txn.txn_time + timedelta(days=days)).astimezone(settlement.business_tz()).date()


def refund_window_expired(txn: Transaction, window_days: int | None = None, now: datetime | None = None) -> bool:
    """Whether the online refund window of ``txn`` is over: exact to the second, ``now > txn_time + window``
    (at the very moment the window ends a refund is still accepted)."""
    days = window_days if window_days is not None else merchant_refund_window_days(txn.merchant)
    return (now or timezone.now()) > txn.txn_time + timedelta(days=days)


def refund_position(
    original: Transaction,
    children: list[Transaction] | None = None,
    now=None,
    *,
    window_days: int | None = None,
    held: int | None = None,
) -> RefundPosition:
    """Refunded so far, held by refunds in flight, still refundable (fen) and until when, for an original
    payment.

    ``window_days`` is the merchant's refund window; by default it is read from its profile. ``held`` is
    what refunds and batch lines in flight hold (``hooks.refund_held``); by default it is asked from the
    registered hooks, and only when the ledger still leaves something to refund.
    """
    now = now or timezone.now()
    if original.txn_type not in REFUNDABLE_TYPES or original.status != TxnStatus.SUCCESS:
        return RefundPosition(False, original.refunded_amount, 0, None, False, False, held or 0)
    if window_days is None:
        window_days = merchant_refund_window_days(original.merchant)
    voided = any(c.txn_type == TxnType.VOID and c.status == TxnStatus.SUCCESS for c in (children or []))
    until = refund_deadline(original, window_days)
    expired = refund_window_expired(original, window_days, now)
    left_in_ledger = 0 if voided or expired else original.amount - original.refunded_amount
    if held is None:
        held = hooks.refund_held([original.pk]).get(original.pk, 0) if left_in_ledger > 0 else 0
    remaining = max(0, left_in_ledger - held)
    return RefundPosition(remaining > 0, original.refunded_amount, remaining, until, expired, voided, held)


def refundable_amount(txn: Transaction, now=None, *, held: int | None = None) -> int:
    """Still refundable of ``txn`` (fen) without loading its children (a void fills refunded_amount):
    amount − refunded − ``held`` by refunds in flight (asked from the hooks when not given)."""
    return refund_position(txn, [], now, held=held).remaining


def refund_position_with_refunds(
    original: Transaction, children: list[Transaction], *, user, now=None, window_days: int | None = None
) -> tuple[RefundPosition, list[hooks.RefundInFlight]]:
    """The refund position of an original payment for ``user``'s detail page, with the refunds in flight
    that hold part of it (not in the ledger yet) as the registered hooks list them; ``held`` is their sum.
    Nothing is asked for a transaction that cannot be refunded."""
    if original.txn_type not in REFUNDABLE_TYPES or original.status != TxnStatus.SUCCESS:
        return refund_position(original, children, now, window_days=window_days, held=0), []
    held, in_flight = hooks.refunds_in_flight(original, user=user)
    return refund_position(original, children, now, window_days=window_days, held=held), in_flight


def merchants_visible_to(user) -> QuerySet[Organisation]:
    """The merchants ``user`` may see, with their user count."""
    return (
        Organisation.objects.visible_to(user)
        .merchants()
        .select_related("acquirer")
        .annotate(user_count=Count("users", distinct=True))
        .order_by("code")
    )


def merchant_get(user, pk: int) -> Organisation:
    return get_object_or_404(merchants_visible_to(user).select_related("merchant_profile"), pk=pk)


def merchant_profile_of(merchant: Organisation) -> MerchantProfile | None:
    try:
        return merchant.merchant_profile
    except ObjectDoesNotExist:
        return None


# --- background downloads ------------------------------------------------------------------------


def export_jobs_of(user) -> QuerySet[ExportJob]:
    """``user``'s own download jobs, newest first."""
    return ExportJob.objects.visible_to(user).order_by("-created_at")


def export_job_get(user, pk) -> ExportJob:
    """``user``'s own job ``pk``; anybody else's (or a malformed id) is a 404."""
    return get_object_or_404(ExportJob.objects.visible_to(user), pk=pk)


def export_jobs_active(user) -> bool:
    return export_jobs_of(user).filter(status__in=(ExportStatus.QUEUED, ExportStatus.RUNNING)).exists()


# --- home dashboard ------------------------------------------------------------------------------

DASHBOARD_DAYS = 30


@dataclass(frozen=True)
class DashboardDay:
    day: date
    count: int  # successful payments
    amount: int  # fen, successful payments
    attempts: int  # payments that reached a final status (success or failed)
    refund_count: int  # successful refunds and voids
    refund_amount: int  # fen

    @property
    def success_rate(self) -> float | None:
        return round(self.count * 100 / self.attempts, 1) if self.attempts else None


@dataclass(frozen=True)
class Dashboard:
    days: list[DashboardDay]
    count: int
    amount: int
    attempts: int
    refund_count: int
    refund_amount: int

    @property
    def success_rate(self) -> float | None:
        return round(self.count * 100 / self.attempts, 1) if self.attempts else None


def dashboard_data(user, *, today: date | None = None) -> Dashboard:
    """The last 30 settlement days of the merchants ``user`` may see, in one grouped query.

    Payments are every type except refunds and voids; count and amount are of the successful
    ones; the success rate is successful / (successful + failed); refunds are successful
    refunds and voids, on the day they settled. Days without transactions show zeros.
    """
    last = today or settlement.current_settlement_day()
    first = last - timedelta(days=DASHBOARD_DAYS - 1)
    payment = ~Q(txn_type__in=REVERSAL_TYPES)
    success = Q(status=TxnStatus.SUCCESS)
    rows = (
        transactions_visible_to(user)
        .filter(settle_date__gte=first, settle_date__lte=last)
        .order_by()
        .values("settle_date")
        .annotate(
            n=Count("id", filter=payment & success),
            paid=Sum("amount", filter=payment & success),
            attempts=Count("id", filter=payment & Q(status__in=(TxnStatus.SUCCESS, TxnStatus.FAILED))),
            refund_n=Count("id", filter=~payment & success),
            refunded=Sum("amount", filter=~payment & success),
        )
    )
    by_day = {row["settle_date"]: row for row in rows}
    days = []
    for offset in range(DASHBOARD_DAYS):
        day = first + timedelta(days=offset)
        row = by_day.get(day) or {}
        days.append(
            DashboardDay(
                day=day,
                count=row.get("n") or 0,
                amount=row.get("paid") or 0,
                attempts=row.get("attempts") or 0,
                refund_count=row.get("refund_n") or 0,
                refund_amount=row.get("refunded") or 0,
            )
        )
    return Dashboard(
        days=days,
        count=sum(d.count for d in days),
        amount=sum(d.amount for d in days),
        attempts=sum(d.attempts for d in days),
        refund_count=sum(d.refund_count for d in days),
        refund_amount=sum(d.refund_amount for d in days),
    )
