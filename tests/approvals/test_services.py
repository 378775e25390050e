"""The maker-checker rules of the engine (security.md G1–G6), tested on the services."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from portal.approvals import errors
from portal.approvals.models import ApprovalPolicy, ApprovalRequest
from portal.approvals.policies import resolve_policy
from portal.approvals.services import (
    approval_cancel,
    approval_policy_save,
    approval_submit,
    approval_void_for_object,
    approvals_expire_due,
)
from portal.audit.models import AuditEvent
from tests.factories import AcquirerFactory, PlatformFactory, UserFactory

from .conftest import BATCH, OBJ_TYPE, SINGLE, decide

pytestmark = pytest.mark.django_db


def _events(action: str, outcome: str | None = None):
    qs = AuditEvent.objects.filter(action=action).order_by("sequence")
    if outcome:
        qs = qs.filter(outcome=outcome)
    return qs


# --- submit and policies --------------------------------------------------------------------------


def test_single_refund_default_needs_one_merchant_reviewer(submit, merchant_a, operator_a):
    request = submit()
    stages = list(request.stages.values_list("index", "role", "org_id", "status"))
    assert stages == [(0, "merchant_reviewer", merchant_a.pk, "pending")]
    assert request.status == "pending"
    assert request.maker == operator_a
    assert request.expires_at == request.created_at + timedelta(hours=72)
    assert request.policy_snapshot["source"] == "default"
    event = _events("approval.submit").get()
    assert (event.actor, event.organisation_id, event.object_id) == (operator_a, merchant_a.pk, str(request.pk))


def test_built_in_defaults_for_refunds(merchant_a):
    single, _ = resolve_policy("refund.single", merchant_a)
    batch, _ = resolve_policy("refund.batch", merchant_a)
    assert single == [{"role": "merchant_reviewer", "org": "merchant"}]
    assert batch == [
        {"role": "merchant_reviewer", "org": "merchant"},
        {"role": "acquirer_reviewer", "org": "acquirer", "min_amount": 50_000_000},
    ]


@pytest.mark.parametrize(("amount", "stages"), [(49_999_999, 1), (50_000_000, 2), (80_000_000, 2)])
def test_batch_threshold_adds_the_acquirer_stage(submit, merchant_a, amount, stages):
    request = submit(kind=BATCH, amount=amount)
    assert request.stages.count() == stages
    if stages == 2:
        acquirer_stage = request.stages.get(index=1)
        assert (acquirer_stage.role, acquirer_stage.org_id) == ("acquirer_reviewer", merchant_a.acquirer_id)


def test_threshold_is_a_setting(submit, settings):
    settings.APPROVAL_ACQUIRER_THRESHOLD_FEN = 1_000
    assert submit(kind=BATCH, amount=1_000).stages.count() == 2


def test_expiry_hours_is_a_setting(submit, settings):
    settings.APPROVAL_EXPIRY_HOURS = 1
    request = submit()
    assert request.expires_at - request.created_at == timedelta(hours=1)


def test_policy_of_the_merchant_wins_and_the_request_keeps_its_snapshot(submit, merchant_a, platform_admin):
    policy = approval_policy_save(
        actor=platform_admin,
        policy=ApprovalPolicy(
            kind=SINGLE,
            organisation=merchant_a,
            stages=[{"role": "merchant_reviewer", "org": "merchant"}, {"role": "acquirer_reviewer", "org": "acquirer"}],
        ),
    )
    request = submit()
    assert request.stages.count() == 2
    assert request.policy_snapshot["policy_id"] == policy.pk
    # when the policy is edited, the pending request keeps what it started with
    policy.stages = [{"role": "merchant_reviewer", "org": "merchant"}]
    approval_policy_save(actor=platform_admin, policy=policy)
    request.refresh_from_db()
    assert request.stages.count() == 2
    assert len(request.policy_snapshot["stages"]) == 2
    assert _events("approval.policy_change").count() == 2


def test_default_policy_applies_to_everyone_without_their_own(submit, merchant_b, platform_admin, admin_b):
    approval_policy_save(
        actor=platform_admin,
        policy=ApprovalPolicy(
            kind=SINGLE, organisation=None, stages=[{"role": "acquirer_reviewer", "org": "acquirer"}]
        ),
    )
    request = submit()
    assert list(request.stages.values_list("role", flat=True)) == ["acquirer_reviewer"]


def test_one_pending_request_per_object(submit, reviewer_a):
    first = submit()
    with pytest.raises(errors.DuplicatePending) as exc:
        submit()
    assert exc.value.request == first
    assert str(first.pk) in str(exc.value)
    assert ApprovalRequest.objects.count() == 1
    # once decided, the object may be submitted again
    decide(reviewer_a, first, "reject", reason="wrong amount")
    assert submit().pk != first.pk


def test_an_expired_pending_request_does_not_block_a_new_one(submit):
    first = submit()
    with time_machine.travel(timezone.now() + timedelta(hours=73)):
        second = submit()
    first.refresh_from_db()
    assert first.status == "expired"
    assert second.status == "pending"


def test_submit_for_an_organisation_the_maker_cannot_see_is_refused(submit, merchant_b):
    with pytest.raises(errors.ApprovalNotFound):
        submit(organisation=merchant_b)
    assert ApprovalRequest.objects.count() == 0


def test_submit_of_an_unregistered_kind_is_refused(operator_a, merchant_a):
    with pytest.raises(ValueError, match="not registered"):
        approval_submit(
            actor=operator_a,
            kind="nope",
            obj_type=OBJ_TYPE,
            obj_id="1",
            organisation=merchant_a,
            amount=1,
            content_hash="0" * 64,
        )


# --- four eyes (G1) ---------------------------------------------------------------------------------


def _maker_for(role: str, merchant_a, superuser: bool = False):
    org_kind = role.split("_")[0] if role != "auditor" else "merchant"
    org = {
        "merchant": merchant_a,
        "acquirer": merchant_a.acquirer,
        "platform": PlatformFactory(),
    }[org_kind]
    # Every maker also holds the stage's role where its organisation allows it: only four-eyes stops them.
    roles = [role] + (["merchant_reviewer"] if org == merchant_a and role != "merchant_reviewer" else [])
    return UserFactory(organisation=org, username=f"maker.{role}.{superuser}", roles=roles, is_superuser=superuser)


ROLES = [
    "merchant_admin",
    "merchant_operator",
    "merchant_reviewer",
    "acquirer_admin",
    "acquirer_reviewer",
    "auditor",
    "platform_admin",
]


@pytest.mark.parametrize("superuser", [False, True], ids=["plain", "superuser"])
@pytest.mark.parametrize("role", ROLES)
def test_maker_cannot_approve_own_request_whatever_the_role(submit, merchant_a, role, superuser):
    # given a request submitted by a user of this role (and a superuser flag)
    maker = _maker_for(role, merchant_a, superuser)
    request = submit(maker=maker, kind=BATCH, amount=60_000_000)
    # when the maker approves it themselves, with a fresh second factor
    with pytest.raises(errors.OwnSubmission) as exc:
        decide(maker, request)
    # then it is refused, nothing moved, and the refusal is audited
    assert exc.value.code == "own_submission"
    request.refresh_from_db()
    assert request.status == "pending"
    assert set(request.stages.values_list("status", flat=True)) == {"pending"}
    denied = _events("approval.approve", "denied").get()
    assert (denied.actor, denied.details["code"]) == (maker, "own_submission")


def test_an_editor_counts_as_a_maker(submit, kinds, reviewer_a):
    request = submit()
    kinds.editors["1"] = {reviewer_a.pk}
    with pytest.raises(errors.OwnSubmission):
        decide(reviewer_a, request)


def test_another_organisations_reviewer_gets_not_found_and_no_audit(submit, reviewer_b):
    request = submit()
    with pytest.raises(errors.ApprovalNotFound) as exc:
        decide(reviewer_b, request)
    assert exc.value.code == "not_found"
    assert _events("approval.approve").count() == 0


@pytest.mark.parametrize("who", ["admin_a", "operator_a", "acquirer_reviewer", "platform_admin", "superuser"])
def test_a_user_without_the_stage_role_gets_wrong_role(submit, request, merchant_a, who):
    if who == "superuser":
        user = UserFactory(organisation=merchant_a, username="a.super", roles=["merchant_admin"], is_superuser=True)
    else:
        user = request.getfixturevalue(who)
    approval = submit(maker=UserFactory(organisation=merchant_a, roles=["merchant_operator"]))
    with pytest.raises(errors.WrongRole) as exc:
        decide(user, approval)
    assert exc.value.code == "wrong_role"
    approval.refresh_from_db()
    assert approval.status == "pending"
    assert _events("approval.approve", "denied").get().details["code"] == "wrong_role"


@pytest.mark.parametrize("otp_at", [None, 0, "stale", "future"])
def test_a_stale_second_factor_is_refused(submit, reviewer_a, otp_at):
    request = submit()
    value = {"stale": time.time() - 301, "future": time.time() + 60}.get(otp_at, otp_at)
    with pytest.raises(errors.StepUpRequired) as exc:
        decide(reviewer_a, request, otp_at=value)
    assert exc.value.code == "step_up_required"
    request.refresh_from_db()
    assert request.status == "pending"


def test_a_second_factor_299_seconds_old_is_fresh(submit, reviewer_a):
    request = submit()
    assert decide(reviewer_a, request, otp_at=time.time() - 299).status == "approved"


# --- stages, threshold, exactly once (G3, G6) ------------------------------------------------------------


def test_above_threshold_needs_merchant_then_acquirer(submit, kinds, reviewer_a, acquirer_reviewer):
    request = submit(kind=BATCH, amount=50_000_000)
    # the acquirer cannot jump the queue
    with pytest.raises(errors.StageNotOpen):
        decide(acquirer_reviewer, request, stage_index=1)
    after_first = decide(reviewer_a, request)
    assert after_first.status == "pending"
    assert kinds.count("approved") == 0
    final = decide(acquirer_reviewer, request)
    assert final.status == "approved"
    assert kinds.count("approved", request) == 1
    assert list(_events("approval.approve").values_list("details__stage", "details__final")) == [
        (0, False),
        (1, True),
    ]


def test_the_acquirer_stage_needs_the_merchants_acquirer(submit, reviewer_a):
    request = submit(kind=BATCH, amount=50_000_000)
    decide(reviewer_a, request)
    other_acquirer_reviewer = UserFactory(organisation=AcquirerFactory(), roles=["acquirer_reviewer"])
    with pytest.raises(errors.ApprovalNotFound):
        decide(other_acquirer_reviewer, request)


def test_the_same_person_cannot_decide_two_stages(submit, kinds, platform_admin, reviewer_a, reviewer_a2):
    approval_policy_save(
        actor=platform_admin,
        policy=ApprovalPolicy(
            kind=BATCH,
            stages=[{"role": "merchant_reviewer", "org": "merchant"}, {"role": "merchant_reviewer", "org": "merchant"}],
        ),
    )
    request = submit(kind=BATCH, amount=1)
    decide(reviewer_a, request)
    with pytest.raises(errors.DecidedEarlierStage) as exc:
        decide(reviewer_a, request)
    assert exc.value.code == "already_decided_earlier_stage"
    assert kinds.count("approved") == 0
    assert decide(reviewer_a2, request).status == "approved"
    assert kinds.count("approved", request) == 1


def test_the_hook_runs_exactly_once(submit, kinds, reviewer_a, reviewer_a2):
    request = submit()
    decide(reviewer_a, request)
    with pytest.raises(errors.AlreadyDecided) as exc:
        decide(reviewer_a2, request)
    assert exc.value.code == "already_decided"
    with pytest.raises(errors.AlreadyDecided):
        decide(reviewer_a2, request, "reject", reason="too late")
    assert kinds.count("approved", request) == 1
    assert kinds.count("rejected") == 0


def test_a_failing_hook_rolls_the_approval_back(submit, kinds, reviewer_a):
    from portal.approvals.registry import get_approvable, register_approvable

    approvable = get_approvable(SINGLE)

    def boom(request):
        raise RuntimeError("gateway down")

    register_approvable(**{**{f: getattr(approvable, f) for f in approvable.__dataclass_fields__}, "on_approved": boom})
    request = submit()
    with pytest.raises(RuntimeError):
        decide(reviewer_a, request)
    request.refresh_from_db()
    assert request.status == "pending"
    assert request.stages.get().status == "pending"


# --- content binding (G4) ---------------------------------------------------------------------------


def test_a_stale_seen_hash_is_refused_without_voiding(submit, reviewer_a):
    request = submit()
    with pytest.raises(errors.ContentChanged) as exc:
        decide(reviewer_a, request, seen="f" * 64)
    assert exc.value.code == "content_changed"
    request.refresh_from_db()
    assert request.status == "pending"


def test_a_change_after_submission_voids_the_request(submit, kinds, reviewer_a):
    request = submit(content={"lines": [1, 2]})
    kinds.content["1"] = {"lines": [1, 2, 3]}  # the maker edited it after submitting
    with pytest.raises(errors.ContentChanged):
        decide(reviewer_a, request)
    request.refresh_from_db()
    assert request.status == "voided"
    assert set(request.stages.values_list("status", flat=True)) == {"skipped"}
    assert _events("approval.void").count() == 1
    assert kinds.count("voided", request) == 1
    assert kinds.count("approved") == 0
    # and approving it later still fails
    with pytest.raises(errors.ContentChanged):
        decide(reviewer_a, request)


def test_domain_code_voids_on_edit(submit, kinds, operator_a, reviewer_a):
    request = submit()
    assert approval_void_for_object(actor=operator_a, obj_type=OBJ_TYPE, obj_id="1", reason="edited") == 1
    request.refresh_from_db()
    assert (request.status, request.status_reason) == ("voided", "edited")
    assert approval_void_for_object(actor=operator_a, obj_type=OBJ_TYPE, obj_id="1", reason="edited") == 0
    with pytest.raises(errors.ContentChanged):
        decide(reviewer_a, request)
    assert kinds.count("approved") == 0


# --- rejection, cancel, expiry ------------------------------------------------------------------------


@pytest.mark.parametrize("reason", ["", "   "])
def test_rejection_needs_a_reason(submit, reviewer_a, reason):
    request = submit()
    with pytest.raises(errors.ReasonRequired) as exc:
        decide(reviewer_a, request, "reject", reason=reason)
    assert exc.value.code == "reason_required"
    request.refresh_from_db()
    assert request.status == "pending"


def test_rejection_is_final(submit, kinds, reviewer_a, acquirer_reviewer):
    request = submit(kind=BATCH, amount=60_000_000)
    rejected = decide(reviewer_a, request, "reject", reason="duplicate file")
    assert rejected.status == "rejected"
    assert list(rejected.stages.values_list("status", "reason")) == [
        ("rejected", "duplicate file"),
        ("skipped", ""),
    ]
    assert kinds.count("rejected", request) == 1
    with pytest.raises(errors.AlreadyDecided):
        decide(acquirer_reviewer, request)
    assert _events("approval.reject").get().details["reason"] == "duplicate file"


def test_maker_cancels_and_nobody_else_can(submit, kinds, operator_a, reviewer_a):
    request = submit()
    with pytest.raises(errors.NotMaker):
        approval_cancel(actor=reviewer_a, request=request)
    cancelled = approval_cancel(actor=operator_a, request=request)
    assert cancelled.status == "cancelled"
    assert kinds.count("cancelled", request) == 1
    with pytest.raises(errors.AlreadyDecided):
        decide(reviewer_a, request)


def test_pending_requests_expire_after_72_hours(submit, kinds, reviewer_a):
    request = submit()
    start = request.created_at
    with time_machine.travel(start + timedelta(hours=72) - timedelta(seconds=1)):
        assert approvals_expire_due() == 0
    with time_machine.travel(start + timedelta(hours=72, seconds=1)):
        assert approvals_expire_due() == 1
        assert approvals_expire_due() == 0  # idempotent
        with pytest.raises(errors.AlreadyDecided):
            decide(reviewer_a, request)
    request.refresh_from_db()
    assert request.status == "expired"
    assert kinds.count("expired", request) == 1
    event = _events("approval.expire").get()
    assert event.actor is None


def test_deciding_after_the_deadline_expires_the_request(submit, kinds, reviewer_a):
    request = submit()
    with time_machine.travel(request.expires_at + timedelta(seconds=1)):
        with pytest.raises(errors.ApprovalExpired) as exc:
            decide(reviewer_a, request)
    assert exc.value.code == "expired"
    request.refresh_from_db()
    assert request.status == "expired"
    assert kinds.count("approved") == 0
    assert _events("approval.expire").count() == 1


def test_the_periodic_task_expires_and_is_scheduled(submit, settings):
    from portal.approvals.tasks import expire_pending_approvals

    request = submit()
    with time_machine.travel(request.expires_at + timedelta(minutes=1)):
        assert expire_pending_approvals() == 1
    assert settings.CELERY_BEAT_SCHEDULE["approvals-expire"] == {
        "task": "approvals.expire_pending_approvals",
        "schedule": 300.0,
    }
