"""Writes of the approval engine: submit, decide, void, cancel, expire, and policy edits.

Every function runs in one ``transaction.atomic`` with its audit event; statuses move only through
``_transition`` (the map in ``choices.py`` plus a compare-and-set on the row). The rules enforced
(security.md G1–G6):

* the decider is not the maker nor an editor, has not decided an earlier stage, holds the stage's
  role in the stage's organisation, and confirmed a second-factor code within
  ``STEP_UP_MAX_AGE_SECONDS`` — no role and no flag (``is_superuser`` included) bypasses this;
* approving is a compare-and-set on the stage, then on the request: of two concurrent approvals one
  wins and the other gets ``AlreadyDecided``; the kind's ``on_approved`` hook runs once, inside the
  transaction that moves the request to approved;
* the decision quotes the content hash the decider saw; if the object changed since submission the
  pending request is voided;
* a rejection needs a reason and is final; a pending request expires after ``APPROVAL_EXPIRY_HOURS``.

``approval_decide`` opens its own transactions and keeps the audit of a refusal (and the void or
expiry it may cause) even though it raises: call it **outside** any ``transaction.atomic`` of yours,
or that record is rolled back with your transaction.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.formats import date_format

from portal.accounts.models import Organisation, OrganisationKind
from portal.accounts.querysets import visible_organisation_ids
from portal.audit.models import AuditOutcome
from portal.audit.services import audit_record

from . import errors
from .choices import REQUEST_TRANSITIONS, STAGE_TRANSITIONS, Decision, RequestStatus, StageOrg, StageStatus
from .models import ApprovalPolicy, ApprovalRequest, ApprovalStage
from .policies import acquirer_stand_in, applicable_stages, resolve_policy, validate_stages
from .registry import Approvable, get_approvable

logger = logging.getLogger(__name__)

_HEX64 = re.compile(r"^[0-9a-f]{64}$")


def approval_content_hash(content) -> str:
    """SHA-256 (hex) of ``content``: bytes as they are, anything else as canonical JSON
    (sorted keys, no spaces, UTF-8). Domain apps hash what the reviewer is shown with this."""
    if isinstance(content, bytes | bytearray | memoryview):
        data = bytes(content)
    else:
        data = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str).encode()
    return hashlib.sha256(data).hexdigest()


# --- the transition helper ------------------------------------------------------------------------


def _transition(model, pk: int, *, old: str, new: str, **fields) -> bool:
    """Move row ``pk`` of ``model`` from ``old`` to ``new`` if it is still ``old``; True when it moved.

    The allowed moves are ``REQUEST_TRANSITIONS`` / ``STAGE_TRANSITIONS``; the guarded UPDATE is the
    compare-and-set (it takes the row lock, so concurrent callers are serialised and all but one see 0 rows).
    """
    transitions = REQUEST_TRANSITIONS if model is ApprovalRequest else STAGE_TRANSITIONS
    if new not in transitions.get(old, frozenset()):
        raise ValueError(f"{model.__name__}: {old} → {new} is not an allowed transition")
    return model.objects.filter(pk=pk, status=old).update(status=new, **fields) == 1


def _skip_open_stages(request: ApprovalRequest) -> None:
    for stage_pk in request.stages.filter(status=StageStatus.PENDING).values_list("pk", flat=True):
        _transition(ApprovalStage, stage_pk, old=StageStatus.PENDING, new=StageStatus.SKIPPED)


def _call(hook, request: ApprovalRequest) -> None:
    if hook is not None:
        request.refresh_from_db()
        hook(request)


def _audit(action: str, *, actor, request: ApprovalRequest, outcome=AuditOutcome.SUCCESS, **details) -> None:
    audit_record(
        action=action,
        actor=actor,
        organisation=request.organisation,
        object_type="approvals.approvalrequest",
        object_id=request.pk,
        outcome=outcome,
        details={
            "kind": request.kind,
            "object_type": request.object_type,
            "object_id": request.object_id,
            **details,
        },
    )


# --- submit ----------------------------------------------------------------------------------------


def _approvable(kind: str) -> Approvable:
    approvable = get_approvable(kind)
    if approvable is None:
        raise ValueError(f"approval kind {kind!r} is not registered")
    return approvable


def _duplicate(existing: ApprovalRequest) -> errors.DuplicatePending:
    when = date_format(timezone.localtime(existing.created_at), "DATETIME_FORMAT")
    return errors.DuplicatePending(
        errors.DuplicatePending.default_message % {"id": existing.pk, "when": when}, request=existing
    )


def _stage_org(side: str, organisation: Organisation) -> Organisation:
    if side == StageOrg.ACQUIRER and organisation.kind == OrganisationKind.MERCHANT:
        return organisation.acquirer
    return organisation


def approval_submit(
    *,
    actor,
    kind: str,
    obj_type: str,
    obj_id,
    organisation: Organisation,
    amount: int,
    content_hash: str,
    summary: str = "",
) -> ApprovalRequest:
    """Open an approval request for one object; ``actor`` is the maker.

    The stages come from the active policy of (kind, merchant), else (kind, its acquirer), else the
    default policy, else the built-in default; a stage whose ``min_amount`` is above ``amount`` (fen)
    is left out; the request keeps a snapshot of the policy. ``organisation`` is the merchant the object
    belongs to, or an acquirer for an object of several of its merchants (a batch file naming them: its
    policy, else the default ones; its reviewers stand in for the merchants', ``acquirer_stand_in``),
    and must be visible to the actor. A second pending request for the same (kind, object)
    raises ``DuplicatePending`` naming the first (one that is already past its expiry is expired first).
    Audited as ``approval.submit``.
    """
    _approvable(kind)
    if organisation.kind not in (OrganisationKind.MERCHANT, OrganisationKind.ACQUIRER):
        raise ValueError("an approval request belongs to a merchant or an acquirer")
    visible = visible_organisation_ids(actor)
    if visible is not None and not visible.filter(pk=organisation.pk).exists():
        raise errors.ApprovalNotFound()
    if isinstance(amount, bool) or not isinstance(amount, int) or amount < 0:
        raise ValueError("amount must be an integer number of fen ≥ 0")
    if not _HEX64.match(content_hash or ""):
        raise ValueError("content_hash must be a lowercase SHA-256 hex digest")
    obj_id = str(obj_id)
    now = timezone.now()
    with transaction.atomic():
        existing = ApprovalRequest.objects.pending().filter(kind=kind, object_type=obj_type, object_id=obj_id).first()
        if existing is not None:
            if existing.expires_at > now:
                raise _duplicate(existing)
            _expire_one(existing.pk, now=now)
        stages, snapshot = resolve_policy(kind, organisation)
        needed = applicable_stages(stages, amount)
        if organisation.kind == OrganisationKind.ACQUIRER:
            needed = acquirer_stand_in(needed)
            snapshot = {**snapshot, "acquirer_stand_in": True}
        if not needed:
            raise ValueError(f"the policy of {kind!r} gives no stage for this amount")
        try:
            with transaction.atomic():
                request = ApprovalRequest.objects.create(
                    kind=kind,
                    object_type=obj_type,
                    object_id=obj_id,
                    organisation=organisation,
                    maker=actor,
                    amount=amount,
                    content_hash=content_hash,
                    policy_snapshot={**snapshot, "amount": amount},
                    summary=(summary or "")[:255],
                    created_at=now,
                    expires_at=now + timedelta(hours=settings.APPROVAL_EXPIRY_HOURS),
                )
        except IntegrityError:
            # A concurrent submission won the one-pending-per-object constraint.
            existing = ApprovalRequest.objects.pending().filter(kind=kind, object_type=obj_type, object_id=obj_id)
            raise _duplicate(existing.get()) from None
        ApprovalStage.objects.bulk_create(
            [
                ApprovalStage(request=request, index=i, role=s["role"], org=_stage_org(s["org"], organisation))
                for i, s in enumerate(needed)
            ]
        )
        _audit(
            "approval.submit",
            actor=actor,
            request=request,
            amount=amount,
            content_hash=content_hash,
            stages=[f"{s['role']}@{s['org']}" for s in needed],
            policy=snapshot.get("policy_id"),
        )
    return request


# --- decide ----------------------------------------------------------------------------------------


def step_up_fresh(otp_verified_at: float | None) -> bool:
    """Whether a second-factor code confirmed at ``otp_verified_at`` (epoch seconds) is recent enough."""
    if not otp_verified_at:
        return False
    age = time.time() - float(otp_verified_at)
    return 0 <= age <= settings.STEP_UP_MAX_AGE_SECONDS


def _eligible(actor, stage: ApprovalStage) -> bool:
    return bool(actor.is_active and actor.organisation_id == stage.org_id and actor.has_role(stage.role))


def _decide(
    *,
    actor,
    request_id: int,
    decision: str,
    reason: str,
    seen_content_hash: str,
    otp_verified_at: float | None,
    stage_index: int | None,
) -> ApprovalRequest:
    now = timezone.now()
    try:
        request_id = int(request_id)
    except (TypeError, ValueError):
        raise errors.ApprovalNotFound() from None
    request = ApprovalRequest.objects.visible_to(actor).select_related("organisation").filter(pk=request_id).first()
    if request is None:
        raise errors.ApprovalNotFound()
    if request.status == RequestStatus.VOIDED:
        raise errors.ContentChanged(request=request)
    if request.status != RequestStatus.PENDING:
        raise errors.AlreadyDecided(request=request)
    if now >= request.expires_at:
        raise errors.ApprovalExpired(request=request)
    approvable = _approvable(request.kind)
    editors = set(approvable.editors(request)) if approvable.editors else set()
    if actor.pk == request.maker_id or actor.pk in editors:
        raise errors.OwnSubmission(request=request)
    stages = list(request.stages.select_related("org").order_by("index"))
    current = next((s for s in stages if s.status == StageStatus.PENDING), None)
    if current is None:
        raise errors.AlreadyDecided(request=request)
    if stage_index is not None and int(stage_index) != current.index:
        if int(stage_index) < current.index:
            raise errors.AlreadyDecided(request=request)
        raise errors.StageNotOpen(request=request)
    if any(s.decided_by_id == actor.pk for s in stages if s.index < current.index):
        raise errors.DecidedEarlierStage(request=request)
    if not _eligible(actor, current):
        raise errors.WrongRole(
            errors.WrongRole.default_message % {"role": current.role_label, "organisation": current.org.display_name},
            request=request,
        )
    if not step_up_fresh(otp_verified_at):
        raise errors.StepUpRequired(request=request)
    if seen_content_hash != request.content_hash:
        raise errors.ContentChanged(request=request)
    if approvable.current_content_hash is not None:
        if approvable.current_content_hash(request.object_type, request.object_id) != request.content_hash:
            raise errors.ContentChanged(request=request, void=True)
    reason = (reason or "").strip()
    if decision == Decision.REJECT and not reason:
        raise errors.ReasonRequired(request=request)

    stage_status = StageStatus.APPROVED if decision == Decision.APPROVE else StageStatus.REJECTED
    if not _transition(
        ApprovalStage,
        current.pk,
        old=StageStatus.PENDING,
        new=stage_status,
        decided_by=actor,
        decided_at=now,
        reason=reason,
        seen_content_hash=seen_content_hash,
    ):
        raise errors.AlreadyDecided(request=request)
    is_last = current.index == stages[-1].index
    if decision == Decision.REJECT:
        if not _transition(
            ApprovalRequest,
            request.pk,
            old=RequestStatus.PENDING,
            new=RequestStatus.REJECTED,
            decided_at=now,
            status_reason=reason[:255],
        ):
            raise errors.AlreadyDecided(request=request)
        _skip_open_stages(request)
        _audit("approval.reject", actor=actor, request=request, stage=current.index, reason=reason, final=True)
        _call(approvable.on_rejected, request)
    elif is_last:
        if not _transition(
            ApprovalRequest, request.pk, old=RequestStatus.PENDING, new=RequestStatus.APPROVED, decided_at=now
        ):
            raise errors.AlreadyDecided(request=request)
        _audit("approval.approve", actor=actor, request=request, stage=current.index, final=True)
        _call(approvable.on_approved, request)
    else:
        # Lock the request row and make sure it is still pending (a void or an expiry may have won).
        if not ApprovalRequest.objects.filter(pk=request.pk, status=RequestStatus.PENDING).update(
            status=RequestStatus.PENDING
        ):
            raise errors.AlreadyDecided(request=request)
        _audit("approval.approve", actor=actor, request=request, stage=current.index, final=False)
    request.refresh_from_db()
    return request


def approval_decide(
    *,
    actor,
    request_id: int,
    decision: str,
    seen_content_hash: str,
    otp_verified_at: float | None,
    reason: str = "",
    stage_index: int | None = None,
) -> ApprovalRequest:
    """Approve or reject the current stage (or ``stage_index``, which must be the current one) of a request.

    Checks, in this order: the request is visible to ``actor`` (else ``ApprovalNotFound``); it is pending
    (``AlreadyDecided``; a voided one ``ContentChanged``); not past its expiry (it is expired now, and
    ``ApprovalExpired``); ``actor`` is not the maker nor an editor (``OwnSubmission``); did not decide an
    earlier stage (``DecidedEarlierStage``); holds the stage's role in the stage's organisation
    (``WrongRole``); confirmed a second factor within ``STEP_UP_MAX_AGE_SECONDS`` (``StepUpRequired``);
    ``seen_content_hash`` equals the submitted hash (``ContentChanged``) and the object's current hash, when
    the kind can compute it, still equals it (else the request is voided, ``ContentChanged``); a rejection
    has a reason (``ReasonRequired``). Then compare-and-set on the stage and, on the last stage or a
    rejection, on the request, calling the kind's hook in the same transaction.

    Audited as ``approval.approve`` / ``approval.reject``; security-relevant refusals are audited with
    outcome ``denied``. See the module docstring about transactions.
    """
    if decision not in Decision.values:
        raise ValueError(f"decision must be one of {Decision.values}")
    try:
        with transaction.atomic():
            return _decide(
                actor=actor,
                request_id=request_id,
                decision=decision,
                reason=reason,
                seen_content_hash=seen_content_hash or "",
                otp_verified_at=otp_verified_at,
                stage_index=stage_index,
            )
    except errors.ApprovalError as exc:
        request = exc.request
        if isinstance(exc, errors.ApprovalExpired) and request is not None:
            _expire_one(request.pk)
        if isinstance(exc, errors.ContentChanged) and exc.void and request is not None:
            _void_one(request.pk, actor=actor, reason="content changed before the decision")
        if exc.audited and request is not None:
            with transaction.atomic():
                _audit(
                    f"approval.{decision}",
                    actor=actor,
                    request=request,
                    outcome=AuditOutcome.DENIED,
                    code=exc.code,
                )
        raise


# --- void, cancel, expire --------------------------------------------------------------------------


def _void_one(request_pk: int, *, actor, reason: str) -> bool:
    with transaction.atomic():
        if not _transition(
            ApprovalRequest,
            request_pk,
            old=RequestStatus.PENDING,
            new=RequestStatus.VOIDED,
            decided_at=timezone.now(),
            status_reason=(reason or "")[:255],
        ):
            return False
        request = ApprovalRequest.objects.select_related("organisation").get(pk=request_pk)
        _skip_open_stages(request)
        _audit("approval.void", actor=actor, request=request, reason=reason)
        approvable = get_approvable(request.kind)
        _call(approvable.on_voided if approvable else None, request)
    return True


def approval_void_for_object(*, actor, obj_type: str, obj_id, reason: str) -> int:
    """Void every pending request for the object, because its content changed (or it is withdrawn).

    Domain code calls this from the service that edits the object, in the same transaction. ``actor``
    may be None for a job. Returns how many requests were voided. Audited as ``approval.void``.
    """
    count = 0
    with transaction.atomic():
        pks = list(
            ApprovalRequest.objects.pending()
            .filter(object_type=obj_type, object_id=str(obj_id))
            .values_list("pk", flat=True)
        )
        for pk in pks:
            count += _void_one(pk, actor=actor, reason=reason)
    return count


def approval_cancel(*, actor, request: ApprovalRequest, reason: str = "") -> ApprovalRequest:
    """The maker withdraws a pending request. Anyone else gets ``NotMaker``; a decided one ``AlreadyDecided``.
    Audited as ``approval.cancel``; the kind's ``on_cancelled`` hook runs in the same transaction."""
    if not ApprovalRequest.objects.visible_to(actor).filter(pk=request.pk).exists():
        raise errors.ApprovalNotFound()
    if actor.pk != request.maker_id:
        raise errors.NotMaker(request=request)
    with transaction.atomic():
        if not _transition(
            ApprovalRequest,
            request.pk,
            old=RequestStatus.PENDING,
            new=RequestStatus.CANCELLED,
            decided_at=timezone.now(),
            status_reason=(reason or "")[:255],
        ):
            raise errors.AlreadyDecided(request=request)
        request.refresh_from_db()
        _skip_open_stages(request)
        _audit("approval.cancel", actor=actor, request=request, reason=reason)
        approvable = get_approvable(request.kind)
        _call(approvable.on_cancelled if approvable else None, request)
    return request


def _expire_one(request_pk: int, *, now: datetime | None = None) -> bool:
    now = now or timezone.now()
    with transaction.atomic():
        if not ApprovalRequest.objects.filter(
            pk=request_pk, expires_at__lte=now, status=RequestStatus.PENDING
        ).exists():
            return False
        if not _transition(
            ApprovalRequest, request_pk, old=RequestStatus.PENDING, new=RequestStatus.EXPIRED, decided_at=now
        ):
            return False
        request = ApprovalRequest.objects.select_related("organisation").get(pk=request_pk)
        _skip_open_stages(request)
        _audit("approval.expire", actor=None, request=request, expires_at=request.expires_at.isoformat())
        approvable = get_approvable(request.kind)
        _call(approvable.on_expired if approvable else None, request)
    return True


def approvals_expire_due(now: datetime | None = None) -> int:
    """Expire every pending request past its ``expires_at``; return how many. Run by the periodic job.

    Each request is expired in its own transaction (audited as ``approval.expire``, actor none); one whose
    ``on_expired`` hook fails is logged and left for the next run. Running it twice changes nothing.
    """
    now = now or timezone.now()
    count = 0
    due = ApprovalRequest.objects.pending().filter(expires_at__lte=now).order_by("expires_at", "pk")
    for pk in list(due.values_list("pk", flat=True)):
        try:
            count += _expire_one(pk, now=now)
        except Exception:
            logger.exception("expiring approval request %s failed", pk)
    return count


# --- policies --------------------------------------------------------------------------------------


def approval_policy_save(*, actor, policy: ApprovalPolicy) -> ApprovalPolicy:
    """Create or change a policy (platform administrators, from the admin). Stages are validated;
    pending requests keep their snapshot. Audited as ``approval.policy_change``."""
    policy.stages = validate_stages(policy.stages)
    created = policy.pk is None
    with transaction.atomic():
        policy.updated_by = actor
        policy.save()
        audit_record(
            action="approval.policy_change",
            actor=actor,
            obj=policy,
            details={
                "kind": policy.kind,
                "organisation_id": policy.organisation_id,
                "stages": policy.stages,
                "is_active": policy.is_active,
                "created": created,
            },
        )
    return policy
