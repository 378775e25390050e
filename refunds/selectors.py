"""Reads of the refunds app: what is still refundable of a payment, lists and one refund."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from django.db.models import Exists, OuterRef, QuerySet, Sum
from django.shortcuts import get_object_or_404
from django.utils import timezone

from payments.choices import REFUNDABLE_TYPES, TxnStatus
from payments.models import Transaction
from payments.selectors import merchant_refund_window_days
from payments.settlement import current_settlement_day
from portal.batches.choices import RELEASED, LineStatus
from portal.batches.models import Batch, BatchLine

from .choices import RESERVING, RefundKind
from .models import Refund

BATCH_KIND = "refund"
# Batch lines that hold their amount of the original (until the ledger has them as successful).
RESERVING_LINES = (LineStatus.VALID, LineStatus.PROCESSING, LineStatus.SENT, LineStatus.SUCCEEDED)


def _in_ledger_as_success():
    return Exists(
        Transaction.objects.filter(
            merchant_id=OuterRef("merchant_id"), order_id=OuterRef("order_id"), status=TxnStatus.SUCCESS
        )
    )


def reserved_by_refunds(original_ids, *, exclude_refund_id: int | None = None) -> dict[int, int]:
    """Fen held by single refunds per original: those pending, approved, being sent, sent, or
    succeeded but not yet in the ledger (once the ledger has them, ``refunded_amount`` holds them)."""
    qs = Refund.objects.filter(original_id__in=original_ids, status__in=RESERVING).exclude(_in_ledger_as_success())
    if exclude_refund_id is not None:
        qs = qs.exclude(pk=exclude_refund_id)
    return {row["original_id"]: row["total"] for row in qs.values("original_id").annotate(total=Sum("amount"))}


def reserved_by_lines(
    original_ids, *, exclude_line_id: int | None = None, exclude_batch_id: int | None = None
) -> dict[int, int]:
    """Fen held by batch refund lines per original (``ref`` is the original's id): valid lines of
    live batches (the file being validated included: its earlier chunks), lines being processed,
    sent, or succeeded but not yet in the ledger. ``exclude_batch_id``: leave one batch out (the
    validation of a file counts its own earlier chunks itself)."""
    refs = [str(pk) for pk in original_ids]
    qs = (
        BatchLine.objects.filter(ref__in=refs, batch__kind=BATCH_KIND, status__in=RESERVING_LINES)
        .exclude(batch__status__in=sorted(RELEASED))
        .exclude(_in_ledger_as_success())
    )
    if exclude_line_id is not None:
        qs = qs.exclude(pk=exclude_line_id)
    if exclude_batch_id is not None:
        qs = qs.exclude(batch_id=exclude_batch_id)
    return {int(row["ref"]): row["total"] for row in qs.values("ref").annotate(total=Sum("amount"))}


def refundable_now(original: Transaction, *, exclude_refund_id=None, exclude_line_id=None) -> int:
    """Fen still refundable of ``original``: its amount − what the ledger has refunded − what
    refunds and batch lines in flight hold. Call it with the original's row locked."""
    ids = [original.pk]
    held = reserved_by_refunds(ids, exclude_refund_id=exclude_refund_id).get(original.pk, 0)
    held += reserved_by_lines(ids, exclude_line_id=exclude_line_id).get(original.pk, 0)
    return max(0, original.amount - original.refunded_amount - held)


def refund_deadline(original: Transaction, window_days: int) -> date:
    return (original.txn_time + timedelta(days=window_days)).date()


def window_expired(original: Transaction, window_days: int, now=None) -> bool:
    now = now or timezone.now()
    return now - original.txn_time > timedelta(days=window_days)


def choose_kind(original: Transaction, amount: int, refundable: int, now=None) -> str:
    """A void when the original is in the settlement day open now, nothing has been refunded or is
    held, and the amount is the full amount; otherwise a refund (formats.md §9)."""
    if (
        original.settle_date == current_settlement_day(now)
        and amount == original.amount
        and refundable == original.amount
    ):
        return RefundKind.VOID
    return RefundKind.REFUND


@dataclass(frozen=True)
class RefundQuote:
    """What the refund form shows: still refundable (fen), the kind a full refund would be, until when."""

    refundable: int
    full_kind: str
    until: date
    expired: bool
    eligible: bool


def refund_quote(original: Transaction) -> RefundQuote:
    window = merchant_refund_window_days(original.merchant)
    expired = window_expired(original, window)
    eligible = original.txn_type in REFUNDABLE_TYPES and original.status == TxnStatus.SUCCESS and not expired
    refundable = refundable_now(original) if eligible else 0
    return RefundQuote(
        refundable=refundable,
        full_kind=choose_kind(original, refundable, refundable) if refundable else RefundKind.REFUND,
        until=refund_deadline(original, window),
        expired=expired,
        eligible=eligible and refundable > 0,
    )


def refunds_visible_to(user) -> QuerySet[Refund]:
    return Refund.objects.visible_to(user).select_related("merchant", "original", "maker")


def refund_get(user, pk) -> Refund:
    return get_object_or_404(refunds_visible_to(user), pk=pk)


def refund_batches_visible_to(user) -> QuerySet[Batch]:
    return (
        Batch.objects.visible_to(user)
        .filter(kind=BATCH_KIND)
        .select_related("organisation", "merchant", "uploaded_by")
        .order_by("-created_at", "-pk")
    )


def refund_batch_get(user, pk) -> Batch:
    return get_object_or_404(refund_batches_visible_to(user), pk=pk)
