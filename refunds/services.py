"""Writes of the refunds app: request a void / refund, the approval hooks, sending through the
gateway and recording the outcome. The one path for the pages, the API and the jobs.

How a refund's outcome is learnt (``payments`` must not import ``refunds``): the network notifies
the ledger receiver, which records a ledger row with the refund's ``order_id``; the refunds side
links to it by (merchant, order_id). ``refund_confirm`` (enqueued after a send, and run for every
refund still ``sent`` by the periodic ``refunds.reconcile`` job) first looks for that ledger row
and, when it is missing or not final, queries the network by orderId + txnTime and records the
final answer in the ledger itself (idempotent: a notification arriving later changes nothing).
"""

from __future__ import annotations

import logging
import secrets
from datetime import timedelta

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import timezone

from payments.choices import REFUNDABLE_TYPES, TxnStatus
from payments.models import Transaction
from payments.money import format_yuan
from payments.selectors import merchant_refund_window_days
from payments.settlement import business_tz, current_settlement_day
from portal.accounts.roles import Perm
from portal.audit.services import audit_record
from portal.core.transitions import move_status

from . import gateway
from .choices import TRANSITIONS, RefundKind, RefundStatus
from .errors import RefundError
from .models import Refund, RefundStatusChange
from .selectors import choose_kind, refundable_now, window_expired

logger = logging.getLogger(__name__)

OBJECT_TYPE = "refunds.refund"
APPROVAL_KIND = "refund.single"
REASON_MAX = 255


# --- the status helper ------------------------------------------------------------------------------


def refund_transition(*, refund_id: int, old, new: str, actor=None, reason: str = "", **fields) -> str | None:
    """Move refund ``refund_id`` to ``new`` if its status is one of ``old`` and ``TRANSITIONS``
    allows it: a compare-and-set plus a ``RefundStatusChange`` row, in the caller's transaction.
    Returns the status it left, or None when it did not move."""
    return move_status(
        Refund,
        refund_id,
        old=old,
        new=new,
        transitions=TRANSITIONS,
        record=lambda current, to: RefundStatusChange.objects.create(
            refund_id=refund_id, from_status=current, to_status=to, actor=actor, reason=(reason or "")[:255]
        ),
        **fields,
    )


def _audit(action: str, refund: Refund, *, actor=None, **details) -> None:
    audit_record(
        action=action,
        actor=actor,
        actor_repr=None if actor else "job:refunds",
        organisation=refund.merchant,
        obj=refund,
        details={
            "order_id": refund.order_id,
            "kind": refund.kind,
            "amount": refund.amount,
            "original": refund.original_id,
            **details,
        },
    )


# --- request -----------------------------------------------------------------------------------------


def new_order_id(merchant_id: int) -> str:
    """A fresh refund order id (8–32 letters and digits): ``RF`` + Beijing time + 8 random digits,
    unused by the merchant's refunds and ledger rows."""
    for _attempt in range(10):
        candidate = f"RF{timezone.now().astimezone(business_tz()):%Y%m%d%H%M%S}{secrets.randbelow(10**8):08d}"
        if not (
            Refund.objects.filter(merchant_id=merchant_id, order_id=candidate).exists()
            or Transaction.objects.filter(merchant_id=merchant_id, order_id=candidate).exists()
        ):
            return candidate
    raise RuntimeError("could not generate a free refund order id")


def refund_content_hash(refund: Refund) -> str:
    """What the reviewer approves: the refund's original, kind, amount, currency, reason and order id."""
    from portal.approvals.services import approval_content_hash

    return approval_content_hash(
        {
            "refund": refund.pk,
            "merchant": refund.merchant_id,
            "original": refund.original_id,
            "orig_query_id": refund.original.query_id if refund.original_id else "",
            "kind": refund.kind,
            "order_id": refund.order_id,
            "amount": refund.amount,
            "currency": refund.currency,
            "reason": refund.reason,
        }
    )


def check_refundable(original: Transaction, amount: int, *, now=None) -> int:
    """Raise ``RefundError`` unless ``amount`` fen may be refunded of the (locked) ``original``;
    return what is still refundable."""
    from payments.choices import TxnType

    if original.txn_type not in REFUNDABLE_TYPES:
        raise RefundError("not_a_payment", {"type": TxnType(original.txn_type).label})
    if original.status != TxnStatus.SUCCESS:
        raise RefundError("not_successful", {"status": TxnStatus(original.status).label})
    window = merchant_refund_window_days(original.merchant)
    if window_expired(original, window, now):
        local = original.txn_time.astimezone(business_tz())
        raise RefundError("window_expired", {"date": local.strftime("%Y-%m-%d"), "days": window})
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        raise RefundError("amount_not_positive")
    refundable = refundable_now(original)
    if refundable <= 0:
        raise RefundError("nothing_refundable")
    if amount > refundable:
        raise RefundError("amount_exceeds", {"amount": format_yuan(amount), "refundable": format_yuan(refundable)})
    return refundable


def refund_request(*, actor, original: Transaction, amount: int, reason: str) -> Refund:
    """Request a void or refund of ``amount`` fen of ``original`` for review.

    The original must be visible to ``actor`` (else ``RefundError`` 404) and ``actor`` hold
    ``refunds.create`` (else ``PermissionDenied``). Under a row lock on the original: it is a
    successful payment, within the merchant's refund window, and ``amount`` is positive and at most
    what is still refundable (amount − refunded − held by refunds and batch lines in flight).
    The kind is a void when the original is in the current settlement day and the amount is full,
    else a refund. Then an approval request ``refund.single`` is opened, bound to the refund's
    content hash. Audited as ``refund.request``. Refusals raise ``RefundError`` (nothing is kept).
    """
    if not Transaction.objects.visible_to(actor).filter(pk=original.pk).exists():
        raise RefundError("not_found", status=404)
    if not actor.has_portal_perm(Perm.REFUNDS_CREATE):
        raise PermissionDenied
    reason = (reason or "").strip()
    if not reason:
        raise RefundError("reason_required")
    if len(reason) > REASON_MAX:
        raise RefundError("reason_too_long")
    from portal.approvals.services import approval_submit

    with transaction.atomic():
        locked = (
            Transaction.objects.select_for_update(of=("self",))
            .select_related("merchant", "merchant__merchant_profile")
            .get(pk=original.pk)
        )
        refundable = check_refundable(locked, amount)
        kind = choose_kind(locked, amount, refundable)
        refund = Refund.objects.create(
            merchant=locked.merchant,
            original=locked,
            kind=kind,
            order_id=new_order_id(locked.merchant_id),
            amount=amount,
            currency=locked.currency,
            reason=reason,
            maker=actor,
        )
        RefundStatusChange.objects.create(refund=refund, from_status="", to_status=refund.status, actor=actor)
        approval = approval_submit(
            actor=actor,
            kind=APPROVAL_KIND,
            obj_type=OBJECT_TYPE,
            obj_id=refund.pk,
            organisation=locked.merchant,
            amount=amount,
            content_hash=refund_content_hash(refund),
            summary=f"{RefundKind(kind).label} {refund.order_id} {format_yuan(amount)}",
        )
        Refund.objects.filter(pk=refund.pk).update(approval_id=approval.pk)
        refund.approval_id = approval.pk
        _audit("refund.request", refund, actor=actor, refundable_before=refundable, reason=reason)
    return refund


def refund_cancel(*, actor, refund: Refund, reason: str = "") -> Refund:
    """The maker withdraws a refund still waiting for review (the approval request is cancelled
    and the hook moves the refund to ``cancelled``). Audited by the engine and as ``refund.cancelled``."""
    from portal.approvals import errors as approval_errors
    from portal.approvals.models import ApprovalRequest
    from portal.approvals.services import approval_cancel

    if not Refund.objects.visible_to(actor).filter(pk=refund.pk).exists():
        raise RefundError("not_found", status=404)
    if actor.pk != refund.maker_id:
        raise RefundError("not_maker", status=403)
    request = ApprovalRequest.objects.filter(pk=refund.approval_id).first()
    if request is None or refund.status != RefundStatus.PENDING_REVIEW:
        raise RefundError("not_cancellable", status=409)
    try:
        approval_cancel(actor=actor, request=request, reason=reason)
    except approval_errors.AlreadyDecided:
        raise RefundError("not_cancellable", status=409) from None
    refund.refresh_from_db()
    return refund


# --- approval hooks (inside the engine's transaction) ----------------------------------------------


def _refund_id(request) -> int | None:
    try:
        return int(request.object_id)
    except (TypeError, ValueError):
        return None


def refund_on_approved(request) -> None:
    """``pending_review`` → ``approved``; the send job is enqueued once the approval commits."""
    refund_id = _refund_id(request)
    if (
        refund_id is None
        or refund_transition(refund_id=refund_id, old=RefundStatus.PENDING_REVIEW, new=RefundStatus.APPROVED) is None
    ):
        return
    _audit("refund.approved", Refund.objects.select_related("merchant").get(pk=refund_id), approval=request.pk)
    transaction.on_commit(lambda: _enqueue("send_refund", refund_id))


def _review_ended(to_status: str):
    def hook(request) -> None:
        refund_id = _refund_id(request)
        if refund_id is None:
            return
        left = refund_transition(
            refund_id=refund_id,
            old=RefundStatus.PENDING_REVIEW,
            new=to_status,
            reason=getattr(request, "status_reason", "") or "",
            finished_at=timezone.now(),
        )
        if left is not None:
            refund = Refund.objects.select_related("merchant").get(pk=refund_id)
            _audit(f"refund.{to_status}", refund, approval=request.pk)

    return hook


refund_on_rejected = _review_ended(RefundStatus.REJECTED)
refund_on_expired = _review_ended(RefundStatus.EXPIRED)
refund_on_cancelled = _review_ended(RefundStatus.CANCELLED)


def refund_current_hash(object_type: str, object_id) -> str | None:
    if object_type != OBJECT_TYPE:
        return None
    refund = Refund.objects.select_related("original").filter(pk=object_id).first()
    return refund_content_hash(refund) if refund is not None else None


def _enqueue(task_name: str, *args, **options) -> None:
    from . import tasks

    task = getattr(tasks, task_name)
    if options:
        task.apply_async(args=args, **options)
    else:
        task.delay(*args)


# --- sending and outcome ---------------------------------------------------------------------------


def _send_fields(refund: Refund) -> dict:
    """Fix ``txn_time`` (and the kind) before the first attempt. A void approved after the cut-off
    of its payment's settlement day is sent as a full refund: the network refuses a late void."""
    fields: dict = {}
    if refund.txn_time is None:
        fields["txn_time"] = timezone.now().replace(microsecond=0)
        if refund.kind == RefundKind.VOID and refund.original.settle_date != current_settlement_day():
            fields["kind"] = RefundKind.REFUND
    return fields


def refund_send(*, refund_id: int) -> str | None:
    """Send an approved refund through the gateway (the ``send_refund`` task); returns its status.

    Claims ``approved`` → ``sending`` (a compare-and-set: two copies of the task send once). A refund
    found ``sending`` (a killed worker, a retried task) is first asked about by query and resent
    only when the network never received it (same order id and txnTime, so a repeat is a
    harmless duplicate). Accepted → ``sent`` and the confirm job; refused → ``failed`` (its
    reservation ends); 02/06 → back to ``approved`` and retried. Connection errors propagate.
    """
    refund = Refund.objects.select_related("merchant", "original").filter(pk=refund_id).first()
    if refund is None:
        return None
    if refund.status == RefundStatus.APPROVED:
        fields = _send_fields(refund)
        with transaction.atomic():
            if (
                refund_transition(refund_id=refund.pk, old=RefundStatus.APPROVED, new=RefundStatus.SENDING, **fields)
                is None
            ):
                return None
        refund.refresh_from_db()
    elif refund.status == RefundStatus.SENDING:
        if refund.txn_time is not None:
            answer = gateway.query(
                mer_id=refund.merchant.code,
                order_id=refund.order_id,
                txn_time=refund.txn_time,
                txn_type=refund.txn_type,
            )
            if answer.status != gateway.NOT_FOUND:
                return _record_send(refund, answer)
        else:
            Refund.objects.filter(pk=refund.pk, txn_time__isnull=True).update(**_send_fields(refund))
            refund.refresh_from_db()
    else:
        return refund.status
    answer = gateway.send(
        mer_id=refund.merchant.code,
        txn_type=refund.txn_type,
        order_id=refund.order_id,
        amount=refund.amount,
        orig_query_id=refund.original.query_id or "",
        txn_time=refund.txn_time,
    )
    return _record_send(refund, answer)


def _result_fields(answer: gateway.Answer) -> dict:
    result = answer.result()
    return {
        "resp_code": result["respCode"][:8],
        "resp_msg": result["respMsg"][:255],
        "query_id": result["queryId"][:21],
        "settle_date": result["settleDate"][:4],
        "trace_no": result["traceNo"][:6],
        "trace_time": result["traceTime"][:10],
    }


def _record_send(refund: Refund, answer: gateway.Answer) -> str:
    now = timezone.now()
    if answer.status == gateway.RETRY:
        refund_transition(refund_id=refund.pk, old=RefundStatus.SENDING, new=RefundStatus.APPROVED, reason="retry")
        _enqueue("send_refund", refund.pk, countdown=60)
        return RefundStatus.APPROVED
    if answer.status == gateway.FAILED and answer.params.get("origRespCode") is None:
        # Refused synchronously: nothing moved, the reservation ends.
        with transaction.atomic():
            if refund_transition(
                refund_id=refund.pk,
                old=RefundStatus.SENDING,
                new=RefundStatus.FAILED,
                reason=answer.params.get("respCode", ""),
                sent_at=now,
                finished_at=now,
                **_result_fields(answer),
            ):
                refund.refresh_from_db()
                _audit("refund.failed", refund, resp_code=refund.resp_code)
        return RefundStatus.FAILED
    if answer.status in (gateway.SUCCEEDED, gateway.FAILED):
        # A query about an earlier send already knows the final outcome.
        refund_transition(refund_id=refund.pk, old=RefundStatus.SENDING, new=RefundStatus.SENT, sent_at=now)
        refund.refresh_from_db()
        return _finish(refund, answer)
    # Accepted, unknown or duplicate: sent; the outcome comes by notification or query.
    fields = {k: v for k, v in _result_fields(answer).items() if v} if answer.status == gateway.ACCEPTED else {}
    with transaction.atomic():
        if refund_transition(
            refund_id=refund.pk, old=RefundStatus.SENDING, new=RefundStatus.SENT, sent_at=now, **fields
        ):
            refund.refresh_from_db()
            _audit("refund.sent", refund, resp_code=refund.resp_code, answer=answer.status)
            refund_id = refund.pk
            transaction.on_commit(lambda: _enqueue("confirm_refund", refund_id, countdown=2))
    return RefundStatus.SENT


def refund_confirm(*, refund_id: int, delays=(0,)) -> str | None:
    """Learn the outcome of a ``sent`` refund (the ``confirm_refund`` task and the periodic
    reconcile): from the ledger row the notification recorded (merchant + order id), else by query
    (then recorded in the ledger). Returns the refund's status; idempotent."""
    refund = Refund.objects.select_related("merchant", "original").filter(pk=refund_id).first()
    if refund is None or refund.status != RefundStatus.SENT:
        return refund.status if refund else None
    ledger = Transaction.objects.filter(merchant_id=refund.merchant_id, order_id=refund.order_id).first()
    if ledger is not None and ledger.status != TxnStatus.PENDING:
        return _finish_from_ledger(refund, ledger)
    if refund.txn_time is None:
        return refund.status
    answer = gateway.query(
        mer_id=refund.merchant.code,
        order_id=refund.order_id,
        txn_time=refund.txn_time,
        txn_type=refund.txn_type,
        delays=delays,
    )
    if answer.status in (gateway.SUCCEEDED, gateway.FAILED):
        return _finish(refund, answer)
    return refund.status


def _finish(refund: Refund, answer: gateway.Answer) -> str:
    ledger = gateway.record_in_ledger(
        merchant=refund.merchant,
        order_id=refund.order_id,
        txn_time=refund.txn_time,
        txn_type=refund.txn_type,
        amount=refund.amount,
        orig_query_id=refund.original.query_id or "",
        answer=answer,
    )
    if ledger is not None:
        return _finish_from_ledger(refund, ledger, extra=_result_fields(answer))
    status = RefundStatus.SUCCEEDED if answer.status == gateway.SUCCEEDED else RefundStatus.FAILED
    return _apply_final(refund, status, _result_fields(answer))


def _finish_from_ledger(refund: Refund, ledger: Transaction, extra: dict | None = None) -> str:
    fields = {
        "ledger_txn_id": ledger.pk,
        "resp_code": ledger.resp_code[:8],
        "resp_msg": ledger.resp_msg[:255],
        "query_id": (ledger.query_id or "")[:21],
        "settle_date": ledger.settle_date.strftime("%m%d") if ledger.settle_date else "",
        "trace_no": ledger.trace_no,
        "trace_time": ledger.trace_time,
    }
    for key, value in (extra or {}).items():
        if value and not fields.get(key):
            fields[key] = value
    status = RefundStatus.SUCCEEDED if ledger.status == TxnStatus.SUCCESS else RefundStatus.FAILED
    return _apply_final(refund, status, fields)


def _apply_final(refund: Refund, status: str, fields: dict) -> str:
    with transaction.atomic():
        if refund_transition(
            refund_id=refund.pk, old=RefundStatus.SENT, new=status, finished_at=timezone.now(), **fields
        ):
            refund.refresh_from_db()
            _audit(f"refund.{status}", refund, resp_code=refund.resp_code)
    refund.refresh_from_db()
    return refund.status


def refunds_reconcile(*, now=None, older_than_seconds: int = 60) -> int:
    """The periodic job: confirm every refund still ``sent`` for a while, resume refunds stuck in
    ``approved`` or ``sending`` (a lost task), and confirm refund batch lines still ``sent``.
    Returns how many items it looked at. Safe to run concurrently and repeatedly."""
    from .batch import batch_lines_reconcile

    now = now or timezone.now()
    cutoff = now - timedelta(seconds=older_than_seconds)
    count = 0
    for pk in Refund.objects.filter(status=RefundStatus.SENT, updated_at__lt=cutoff).values_list("pk", flat=True):
        try:
            refund_confirm(refund_id=pk)
        except Exception:
            logger.exception("refunds: confirming refund %s failed", pk)
        count += 1
    stuck = Refund.objects.filter(status__in=[RefundStatus.APPROVED, RefundStatus.SENDING], updated_at__lt=cutoff)
    for pk in stuck.values_list("pk", flat=True):
        _enqueue("send_refund", pk)
        count += 1
    count += batch_lines_reconcile(cutoff=cutoff)
    return count
