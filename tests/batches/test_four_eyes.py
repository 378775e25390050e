"""Four eyes on batches (security.md G1): whoever prepared a batch — the uploader, who may be an acquirer's
reviewer uploading on a merchant's behalf, and whoever submitted it — decides no stage of its review."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest
from django.urls import reverse

from portal.approvals import errors
from portal.approvals.models import ApprovalRequest
from portal.approvals.registry import get_approvable
from portal.approvals.selectors import approval_can_decide, approvals_waiting_count, approvals_waiting_for
from portal.approvals.services import approval_decide
from portal.audit.models import AuditEvent
from portal.batches.models import Batch
from portal.batches.registry import register_batch_kind
from portal.batches.services import batch_submit, batch_upload
from tests.factories import UserFactory

from .conftest import text_file

pytestmark = pytest.mark.django_db

OWN = {
    "en": "You submitted or edited this yourself: someone else must review it.",
    "zh-hans": "该事项由您本人提交或修改，须由他人复核。",
}


@pytest.fixture
def two_stage_demo(settings, demo_kind):
    """The demo kind reviewed by a merchant reviewer, then an acquirer reviewer, whatever the amount."""
    settings.APPROVAL_DEFAULT_POLICIES = {
        "demo.batch": [
            {"role": "merchant_reviewer", "org": "merchant"},
            {"role": "acquirer_reviewer", "org": "acquirer"},
        ]
    }
    register_batch_kind(replace(demo_kind, approval_kind="demo.batch"))


@pytest.fixture
def acquirer_reviewer2(acquirer):
    return UserFactory(organisation=acquirer, username="acq.reviewer2", roles=["acquirer_reviewer"])


def _decide(actor, request: ApprovalRequest, decision: str = "approve") -> ApprovalRequest:
    return approval_decide(
        actor=actor,
        request_id=request.pk,
        decision=decision,
        reason="no" if decision == "reject" else "",
        seen_content_hash=request.content_hash,
        otp_verified_at=time.time(),
    )


def _upload_and_submit(uploader, submitter, merchant, capture, line="F1|100") -> tuple[Batch, ApprovalRequest]:
    on_behalf = merchant if uploader.organisation_id != merchant.pk else None
    with capture(execute=True):
        batch = batch_upload(actor=uploader, kind="demo", uploaded_file=text_file([line]), merchant=on_behalf)
    batch = batch_submit(actor=submitter, batch=batch)
    return batch, ApprovalRequest.objects.get(pk=batch.approval_id)


# The uploader of each role (superuser or not) also holds the roles to upload and to decide a stage where its
# organisation allows them: only four eyes stops them.
UPLOADERS = {
    "merchant_operator": ("merchant", ["merchant_operator", "merchant_reviewer"]),
    "merchant_reviewer": ("merchant", ["merchant_reviewer", "merchant_operator"]),
    "merchant_admin": ("merchant", ["merchant_admin", "merchant_operator", "merchant_reviewer"]),
    "merchant_auditor": ("merchant", ["auditor", "merchant_operator", "merchant_reviewer"]),
    "acquirer_reviewer": ("acquirer", ["acquirer_reviewer"]),
    "acquirer_admin": ("acquirer", ["acquirer_admin", "acquirer_reviewer"]),
    "acquirer_auditor": ("acquirer", ["auditor", "acquirer_reviewer"]),
}


@pytest.mark.parametrize("superuser", [False, True], ids=["plain", "superuser"])
@pytest.mark.parametrize("who", list(UPLOADERS))
def test_the_uploader_decides_no_stage_whatever_the_role(
    two_stage_demo,
    merchant_a,
    operator_a,
    reviewer_a,
    acquirer_reviewer2,
    django_capture_on_commit_callbacks,
    who,
    superuser,
):
    # given a batch uploaded by a user of this role (for merchant A) and submitted by another person
    side, roles = UPLOADERS[who]
    org = merchant_a if side == "merchant" else merchant_a.acquirer
    uploader = UserFactory(organisation=org, username=f"up.{who}.{superuser}", roles=roles, is_superuser=superuser)
    batch, request = _upload_and_submit(uploader, operator_a, merchant_a, django_capture_on_commit_callbacks)
    assert request.maker_id == operator_a.pk != uploader.pk
    # when the uploader tries the merchant stage, then is refused as having prepared it, and it is audited
    assert not approval_can_decide(uploader, request)
    with pytest.raises(errors.OwnSubmission) as exc:
        _decide(uploader, request)
    assert exc.value.code == "own_submission"
    denied = AuditEvent.objects.filter(action="approval.approve", outcome="denied").get()
    assert (denied.actor, denied.details["code"]) == (uploader, "own_submission")
    # a merchant reviewer who had no hand in it decides the merchant stage
    assert _decide(reviewer_a, request).status == "pending"
    # the uploader cannot decide the acquirer stage either, approving or rejecting
    request.refresh_from_db()
    assert not approval_can_decide(uploader, request)
    for decision in ("approve", "reject"):
        with pytest.raises(errors.OwnSubmission):
            _decide(uploader, request, decision)
    assert list(request.stages.order_by("index").values_list("status", flat=True)) == ["approved", "pending"]
    # and a third person, an acquirer reviewer, does: the batch is approved and processed once
    assert approval_can_decide(acquirer_reviewer2, request)
    with django_capture_on_commit_callbacks(execute=True):
        assert _decide(acquirer_reviewer2, request).status == "approved"
    batch.refresh_from_db()
    assert (batch.status, batch.succeeded_lines) == ("completed", 1)


def test_the_submitter_decides_no_stage_either(
    two_stage_demo, merchant_a, operator_a, reviewer_a, acquirer_reviewer, django_capture_on_commit_callbacks
):
    # the submitter holds the merchant reviewer role too; the upload was someone else's
    submitter = UserFactory(
        organisation=merchant_a, username="a.both", roles=["merchant_operator", "merchant_reviewer"]
    )
    _batch, request = _upload_and_submit(acquirer_reviewer, submitter, merchant_a, django_capture_on_commit_callbacks)
    with pytest.raises(errors.OwnSubmission):
        _decide(submitter, request)
    assert _decide(reviewer_a, request).status == "pending"


@pytest.mark.parametrize("language", ["en", "zh-hans"])
def test_acquirer_reviewer_who_uploaded_is_told_in_their_language_on_the_page(
    two_stage_demo,
    merchant_a,
    operator_a,
    reviewer_a,
    acquirer_reviewer,
    client_for,
    django_capture_on_commit_callbacks,
    language,
):
    # given: the acquirer's reviewer uploads on merchant A's behalf, A's operator submits, A's reviewer approves
    acquirer_reviewer.language = language
    acquirer_reviewer.save(update_fields=["language"])
    batch, request = _upload_and_submit(acquirer_reviewer, operator_a, merchant_a, django_capture_on_commit_callbacks)
    _decide(reviewer_a, request)
    # when the acquirer reviewer approves the acquirer stage from the page
    response = client_for(acquirer_reviewer).post(
        reverse("approvals:decide", args=[request.pk]),
        {"decision": "approve", "seen_content_hash": request.content_hash, "stage_index": 1},
        follow=True,
    )
    # then they land on the batch with the "you prepared this" answer, and nothing moved
    assert response.redirect_chain == [(reverse("batches:detail", args=[batch.pk]), 302)]
    assert OWN[language] in response.content.decode()
    request.refresh_from_db()
    assert request.status == "pending"
    assert Batch.objects.get(pk=batch.pk).status == "pending_review"


def test_refund_batches_keep_the_editors_when_reviews_point_to_the_refund_page():
    # refunds re-registers "refund.batch" to send reviewers to its own page: the editors must survive it
    from portal.batches import approval

    assert get_approvable("refund.batch").editors is approval._editors
    assert get_approvable("refund.batch").edited_by is approval._edited_by


def test_the_inbox_and_its_count_leave_out_what_the_reviewer_prepared(
    two_stage_demo, merchant_a, operator_a, reviewer_a, acquirer_reviewer, django_capture_on_commit_callbacks
):
    # given two batches of merchant A at the acquirer stage: one uploaded by the acquirer's reviewer, one by A
    own, own_request = _upload_and_submit(acquirer_reviewer, operator_a, merchant_a, django_capture_on_commit_callbacks)
    other, other_request = _upload_and_submit(
        operator_a, operator_a, merchant_a, django_capture_on_commit_callbacks, line="F2|200"
    )
    for request in (own_request, other_request):
        _decide(reviewer_a, request)
    # then the reviewer's inbox and the count in the navigation hold only the one they may decide
    assert list(approvals_waiting_for(acquirer_reviewer)) == [other_request]
    assert approvals_waiting_count(acquirer_reviewer) == 1
    # and another reviewer of the acquirer, who prepared neither, sees both
    second = UserFactory(organisation=merchant_a.acquirer, username="acq.second", roles=["acquirer_reviewer"])
    assert set(approvals_waiting_for(second)) == {own_request, other_request}
