"""Reads of the refunds app: what is still refundable of a payment, lists and one refund."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from django.db.models import Exists, OuterRef, QuerySet, Sum
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils.translation import gettext as _

from payments.choices import REFUNDABLE_TYPES, TxnStatus
from payments.hooks import RefundInFlight
from payments.models import Transaction
from payments.selectors import merchant_refund_window_days, refund_deadline, refund_window_expired
from payments.settlement import current_settlement_day
from portal.accounts.roles import Perm
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


def _holding_refunds(original_ids) -> QuerySet[Refund]:
    """Single refunds that hold part of their original: pending, approved, being sent, sent, or
    succeeded but not yet in the ledger (once the ledger has them, ``refunded_amount`` holds them)."""
    return Refund.objects.filter(original_id__in=original_ids, status__in=RESERVING).exclude(_in_ledger_as_success())


def _holding_lines(original_ids) -> QuerySet[BatchLine]:
    """Batch refund lines that hold part of their original (``ref`` is the original's id): valid lines
    of live batches, lines being processed, sent, or succeeded but not yet in the ledger."""
    refs = [str(pk) for pk in original_ids]
    return (
        BatchLine.objects.filter(ref__in=refs, batch__kind=BATCH_KIND, status__in=RESERVING_LINES)
        .exclude(batch__status__in=sorted(RELEASED))
        .exclude(_in_ledger_as_success())
    )


def reserved_by_refunds(original_ids, *, exclude_refund_id: int | None = None) -> dict[int, int]:
    """Fen held by single refunds per original (see ``_holding_refunds``)."""
    qs = _holding_refunds(original_ids)
    if exclude_refund_id is not None:
        qs = qs.exclude(pk=exclude_refund_id)
    return {row["original_id"]: row["total"] for row in qs.values("original_id").annotate(total=Sum("amount"))}


def reserved_by_lines(
    original_ids, *, exclude_line_id: int | None = None, exclude_batch_id: int | None = None
) -> dict[int, int]:
    """Fen held by batch refund lines per original (see ``_holding_lines``; the file being validated
    included: its earlier chunks). ``exclude_batch_id``: leave one batch out (the validation of a file
    counts its own earlier chunks itself)."""
    qs = _holding_lines(original_ids)
    if exclude_line_id is not None:
        qs = qs.exclude(pk=exclude_line_id)
    if exclude_batch_id is not None:
        qs = qs.exclude(batch_id=exclude_batch_id)
    return {int(row["ref"]): row["total"] for row in qs.values("ref").annotate(total=Sum("amount"))}


def reserved_fen(original_ids) -> dict[int, int]:
    """Fen held per original by single refunds and batch lines in flight (two queries): what
    ``refundable_now`` subtracts. Registered as the ledger's refund hook (``payments.hooks``)."""
    ids = list(original_ids)
    held = reserved_by_refunds(ids)
    for pk, fen in reserved_by_lines(ids).items():
        held[pk] = held.get(pk, 0) + fen
    return held


def refunds_in_flight(original: Transaction, user) -> list[RefundInFlight]:
    """The refunds and batch lines holding part of ``original`` (exactly what ``reserved_fen`` counts),
    for the payment's page of ``user`` (who may see the payment). Two queries. A batch the user may not
    see (an acquirer's file for several merchants) is listed without its link and its uploader; a user
    without the refunds permission sees amounts and statuses only."""
    can_view = user.has_portal_perm(Perm.REFUNDS_VIEW)
    can_view_batches = can_view and user.has_portal_perm(Perm.BATCHES_VIEW)
    items = [
        RefundInFlight(
            label=refund.get_kind_display(),
            order_id=refund.order_id,
            amount=refund.amount,
            status=refund.get_status_display(),
            maker=refund.maker.get_username() if can_view else "",
            created_at=refund.created_at,
            url=reverse("refunds:detail", args=[refund.pk]) if can_view else "",
        )
        # Refunds of a payment are its merchant's: visible to whoever sees the payment.
        for refund in _holding_refunds([original.pk]).select_related("maker").order_by("created_at", "pk")
    ]
    lines = (
        _holding_lines([original.pk])
        .select_related("batch", "batch__uploaded_by")
        .annotate(batch_visible=Exists(Batch.objects.visible_to(user).filter(pk=OuterRef("batch_id"))))
        .order_by("batch__created_at", "batch_id", "line_no")
    )
    for line in lines:
        visible = line.batch_visible
        items.append(
            RefundInFlight(
                label=_("Batch refund line %(line)s") % {"line": line.line_no},
                order_id=line.order_id,
                amount=line.amount,
                status=line.get_status_display(),
                maker=line.batch.uploaded_by.get_username() if visible and can_view else "",
                created_at=line.batch.created_at,
                url=reverse("refunds:batch_detail", args=[line.batch_id]) if visible and can_view_batches else "",
            )
        )
    return items


def refundable_now(original: Transaction, *, exclude_refund_id=None, exclude_line_id=None) -> int:
    """Fen still refundable of ``original``: its amount − what the ledger has refunded − what
    refunds and batch lines in flight hold. Call it with the original's row locked."""
    ids = [original.pk]
    held = reserved_by_refunds(ids, exclude_refund_id=exclude_refund_id).get(original.pk, 0)
    held += reserved_by_lines(ids, exclude_line_id=exclude_line_id).get(original.pk, 0)
    return max(0, original.amount - original.refunded_amount - held)


def window_expired(original: Transaction, window_days: int, now=None) -> bool:
    """Whether the online refund window is over (``payments.selectors.refund_window_expired``)."""
    return refund_window_expired(original, window_days, now)


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
    """The refund form's figures; the deadline and the window come from the ledger's functions, so the
    form and the payment's page show the same date."""
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
