"""Workbench writes (差错处理): assign, comment, resolve. Each in one transaction with its audit event.

Resolving by "adjust the ledger" submits an approval request (kind ``reconciliation.adjust``); the adjustment is
applied by :func:`adjust_on_approved` when the last stage approves (in the approval's transaction), through
``payments.services`` (``ledger_record`` for an upstream-only transaction, ``ledger_adjust`` for the others).
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from payments.choices import TxnSource, TxnStatus
from payments.services import ledger_adjust, ledger_record
from portal.accounts.models import User
from portal.accounts.roles import Perm
from portal.approvals.services import approval_content_hash, approval_submit
from portal.audit.services import audit_record

from .choices import TRANSITIONS, DiscrepancyClass, DiscrepancyStatus, Resolution
from .models import Discrepancy, DiscrepancyComment

ADJUST_KIND = "reconciliation.adjust"
OBJECT_TYPE = "recon_upstream.discrepancy"


class WorkbenchError(Exception):
    """A workbench action is not possible; the message is for the user (translated)."""


def _transition(discrepancy: Discrepancy, new: str, **fields) -> None:
    """Move ``discrepancy`` to ``new`` along ``TRANSITIONS`` with a compare-and-set on the status it had."""
    old = discrepancy.status
    if new not in TRANSITIONS[old]:
        raise WorkbenchError(
            _("This discrepancy is %(status)s: that is not possible now.")
            % {"status": discrepancy.get_status_display()}
        )
    changed = Discrepancy.objects.filter(pk=discrepancy.pk, status=old).update(
        status=new, updated_at=timezone.now(), **fields
    )
    if not changed:
        raise WorkbenchError(_("Someone else changed this discrepancy meanwhile; reload the page."))
    discrepancy.refresh_from_db()


def eligible_assignees(discrepancy: Discrepancy):
    """Active people of the merchant or its acquirer who may act on discrepancies."""
    merchant = discrepancy.merchant
    orgs = [merchant.pk] + ([merchant.acquirer_id] if merchant.acquirer_id else [])
    users = User.objects.filter(organisation_id__in=orgs, is_active=True).order_by("username")
    return [user for user in users if user.has_portal_perm(Perm.RECONCILIATION_MANAGE)]


def _audit(action: str, *, actor, discrepancy: Discrepancy, **details) -> None:
    audit_record(
        action=action,
        actor=actor,
        actor_repr=None if actor else "reconciliation",
        organisation=discrepancy.merchant,
        obj=discrepancy,
        details={"cls": discrepancy.cls, "query_id": discrepancy.query_id, **details},
    )


def discrepancy_assign(*, actor, discrepancy: Discrepancy, assignee: User) -> Discrepancy:
    """Give the discrepancy to ``assignee`` (one of :func:`eligible_assignees`). Audited ``reconciliation.assign``."""
    if assignee not in eligible_assignees(discrepancy):
        raise WorkbenchError(_("This person cannot work on this merchant's discrepancies."))
    with transaction.atomic():
        _transition(discrepancy, DiscrepancyStatus.ASSIGNED, assignee=assignee)
        _audit("reconciliation.assign", actor=actor, discrepancy=discrepancy, assignee=assignee.get_username())
    return discrepancy


def discrepancy_comment(*, actor, discrepancy: Discrepancy, body: str) -> DiscrepancyComment:
    """Add a comment. Audited ``reconciliation.comment``."""
    body = (body or "").strip()
    if not body:
        raise WorkbenchError(_("Write a comment first."))
    with transaction.atomic():
        comment = DiscrepancyComment.objects.create(discrepancy=discrepancy, author=actor, body=body[:4000])
        _audit("reconciliation.comment", actor=actor, discrepancy=discrepancy, comment=comment.pk)
    return comment


def adjustment_content(discrepancy: Discrepancy) -> dict:
    """What the reviewer approves: the discrepancy's facts (its status aside)."""
    return {
        "discrepancy": discrepancy.pk,
        "cls": discrepancy.cls,
        "merchant": discrepancy.merchant_id,
        "query_id": discrepancy.query_id,
        "order_id": discrepancy.order_id,
        "transaction": discrepancy.transaction_id,
        "record": discrepancy.record_id,
        "ledger_amount": discrepancy.ledger_amount,
        "upstream_amount": discrepancy.upstream_amount,
        "ledger_status": discrepancy.ledger_status,
    }


def discrepancy_resolve(*, actor, discrepancy: Discrepancy, resolution: str, reason: str = "") -> Discrepancy:
    """Resolve: mark as an upstream error, write off (reason required), or ask to adjust the ledger.

    "Adjust the ledger" submits an approval request and leaves the discrepancy ``pending_approval``; a fee
    difference cannot be adjusted (the ledger holds no fee). Audited ``reconciliation.resolve`` /
    ``reconciliation.adjust_requested``.
    """
    reason = (reason or "").strip()
    if resolution not in Resolution.values:
        raise WorkbenchError(_("Choose how to resolve the discrepancy."))
    if resolution == Resolution.WRITE_OFF and not reason:
        raise WorkbenchError(_("A write-off needs a reason."))
    if resolution == Resolution.ADJUST_LEDGER:
        if discrepancy.cls == DiscrepancyClass.FEE:
            raise WorkbenchError(_("The ledger holds no fee: mark this as an upstream error or write it off."))
        if discrepancy.status not in (DiscrepancyStatus.OPEN, DiscrepancyStatus.ASSIGNED):
            raise WorkbenchError(_("This discrepancy cannot be adjusted now."))
        with transaction.atomic():
            request = approval_submit(
                actor=actor,
                kind=ADJUST_KIND,
                obj_type=OBJECT_TYPE,
                obj_id=discrepancy.pk,
                organisation=discrepancy.merchant,
                amount=abs(discrepancy.amount),
                content_hash=approval_content_hash(adjustment_content(discrepancy)),
                summary=_("Adjust the ledger: %(cls)s %(ref)s")
                % {"cls": discrepancy.get_cls_display(), "ref": discrepancy.query_id or discrepancy.order_id},
            )
            _transition(discrepancy, DiscrepancyStatus.PENDING_APPROVAL, approval_request_id=request.pk, reason=reason)
            _audit("reconciliation.adjust_requested", actor=actor, discrepancy=discrepancy, approval=request.pk)
        return discrepancy
    with transaction.atomic():
        _transition(
            discrepancy,
            DiscrepancyStatus.RESOLVED,
            resolution=resolution,
            reason=reason,
            resolved_by=actor,
            resolved_at=timezone.now(),
        )
        _audit("reconciliation.resolve", actor=actor, discrepancy=discrepancy, resolution=resolution, reason=reason)
    return discrepancy


def _apply_adjustment(discrepancy: Discrepancy, *, actor, reference: str) -> None:
    reason = discrepancy.reason or str(discrepancy.get_cls_display())
    cls = discrepancy.cls
    if cls == DiscrepancyClass.UPSTREAM_ONLY:
        record = discrepancy.record
        ledger_record(
            merchant=discrepancy.merchant,
            order_id=record.order_id or f"UP{record.query_id}",
            txn_time=record.transmitted_at,
            txn_type=record.txn_type or "01",
            amount=record.amount,
            status=TxnStatus.SUCCESS,
            source=TxnSource.IMPORT,
            query_id=record.query_id or None,
            biz_type=record.biz_type or "000201",
            trace_no=record.trace_no,
            trace_time=record.trans_time,
            settle_date=discrepancy.settle_date,
            orig_query_id=record.orig_query_id,
            card_type=record.card_type,
            actor=actor,
        )
    elif cls == DiscrepancyClass.AMOUNT:
        ledger_adjust(
            actor=actor,
            transaction_id=discrepancy.transaction_id,
            amount=discrepancy.upstream_amount,
            reason=reason,
            reference=reference,
        )
    elif cls == DiscrepancyClass.STATUS:
        ledger_adjust(
            actor=actor,
            transaction_id=discrepancy.transaction_id,
            status=TxnStatus.SUCCESS,
            reason=reason,
            reference=reference,
        )
    elif cls == DiscrepancyClass.LEDGER_ONLY:
        ledger_adjust(
            actor=actor,
            transaction_id=discrepancy.transaction_id,
            status=TxnStatus.FAILED,
            reason=reason,
            reference=reference,
        )
    else:  # a fee difference is never submitted
        raise ValueError(f"no ledger adjustment for {cls}")


def _request_discrepancy(request) -> Discrepancy:
    return (
        Discrepancy.objects.select_for_update(of=("self",))
        .select_related("merchant", "record")
        .get(pk=int(request.object_id))
    )


def _last_decider(request):
    stage = request.stages.filter(decided_by__isnull=False).order_by("-index").first()
    return stage.decided_by if stage else None


def adjust_on_approved(request) -> None:
    """Approval hook (inside the approval's transaction): apply the adjustment and resolve the discrepancy."""
    discrepancy = _request_discrepancy(request)
    actor = _last_decider(request)
    _apply_adjustment(discrepancy, actor=actor, reference=f"approval:{request.pk}")
    _transition(
        discrepancy,
        DiscrepancyStatus.RESOLVED,
        resolution=Resolution.ADJUST_LEDGER,
        resolved_by=actor,
        resolved_at=timezone.now(),
    )
    _audit(
        "reconciliation.resolve",
        actor=actor,
        discrepancy=discrepancy,
        resolution=Resolution.ADJUST_LEDGER,
        approval=request.pk,
    )


def adjust_on_closed(request) -> None:
    """Approval hook for a rejected, expired, voided or cancelled request: the discrepancy is worked on again."""
    discrepancy = _request_discrepancy(request)
    if discrepancy.status != DiscrepancyStatus.PENDING_APPROVAL:
        return
    back = DiscrepancyStatus.ASSIGNED if discrepancy.assignee_id else DiscrepancyStatus.OPEN
    _transition(discrepancy, back, approval_request_id=None)
    _audit(
        "reconciliation.adjust_closed", actor=None, discrepancy=discrepancy, approval=request.pk, outcome=request.status
    )


def adjust_current_hash(object_type: str, object_id: str) -> str | None:
    discrepancy = Discrepancy.objects.filter(pk=int(object_id)).first()
    return approval_content_hash(adjustment_content(discrepancy)) if discrepancy else None
