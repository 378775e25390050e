"""The refund API: contract, refusals, four-eyes with step-up, idempotency keys, batches."""

from __future__ import annotations

from unittest import mock

import pytest
from django.test import Client

from portal.accounts.models import SMSDevice
from portal.audit.models import AuditEvent
from refunds.api import idempotency
from refunds.models import IdempotencyKey, Refund
from tests.factories import UserFactory, login_password_only

from .conftest import text_batch

pytestmark = pytest.mark.django_db

REFUNDS = "/api/v1/refunds/"
BATCHES = "/api/v1/refund-batches/"


@pytest.fixture(autouse=True)
def no_send():
    with mock.patch("refunds.tasks.send_refund.delay") as delay:
        yield delay


@pytest.fixture
def payment(make_payment, merchant_a):
    return make_payment(merchant_a, amount=10000)


def create(client, payment, amount=2500, key=None, reason="damaged"):
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
    return client.post(
        REFUNDS,
        {"orig_query_id": payment.query_id, "amount": amount, "reason": reason},
        content_type="application/json",
        **headers,
    )


def test_create_returns_the_refund_in_fen(client_for, operator_a, payment):
    response = create(client_for(operator_a), payment)

    assert response.status_code == 201
    body = response.json()
    assert {k: body[k] for k in ("kind", "txn_type", "amount", "currency", "status", "orig_query_id", "maker")} == {
        "kind": "refund",
        "txn_type": "04",
        "amount": 2500,
        "currency": "156",
        "status": "pending_review",
        "orig_query_id": payment.query_id,
        "maker": "a.operator",
    }
    assert len(body["content_hash"]) == 64


def test_refusal_has_code_and_message(client_for, operator_a, payment):
    response = create(client_for(operator_a), payment, amount=10001)

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "amount_exceeds"
    assert response.json()["error"]["message"].startswith("The amount (100.01 yuan)")


def test_access_rules(client_for, operator_a, admin_a, admin_b, payment):
    assert Client().post(REFUNDS, {}, content_type="application/json").status_code in (401, 403)
    password_only = Client()
    login_password_only(password_only, operator_a)
    assert create(password_only, payment).status_code in (401, 403)
    assert create(client_for(admin_a), payment).status_code == 403
    other = UserFactory(organisation=admin_b.organisation, roles=["merchant_operator"])
    response = create(client_for(other), payment)
    assert (response.status_code, response.json()["error"]["code"]) == (404, "not_found")
    assert Refund.objects.count() == 0
    assert not AuditEvent.objects.filter(action="refund.request").exists()


def test_maker_cannot_approve_own_refund_even_with_reviewer_role(client_for, merchant_a, payment):
    both = UserFactory(organisation=merchant_a, roles=["merchant_operator", "merchant_reviewer"], is_superuser=True)
    client = client_for(both)
    refund_id = create(client, payment).json()["id"]

    response = client.post(f"{REFUNDS}{refund_id}/approve/", {}, content_type="application/json")

    assert (response.status_code, response.json()["error"]["code"]) == (403, "own_submission")
    assert Refund.objects.get(pk=refund_id).status == "pending_review"


def test_reviewer_approves_with_an_sms_code(client_for, operator_a, reviewer_a, payment, no_send):
    refund_id = create(client_for(operator_a), payment).json()["id"]
    client = client_for(reviewer_a)
    session = client.session
    session["portal_otp_verified_at"] = 0  # the sign-in code is too old for a decision
    session.save()

    stale = client.post(f"{REFUNDS}{refund_id}/approve/", {}, content_type="application/json")
    sent = client.post("/api/v1/otp/send/")
    again = client.post("/api/v1/otp/send/")
    token = SMSDevice.objects.get(user=reviewer_a, purpose="step_up").token
    ok = client.post(f"{REFUNDS}{refund_id}/approve/", {"otp_token": token}, content_type="application/json")

    assert (stale.status_code, stale.json()["error"]["code"]) == (403, "step_up_required")
    assert sent.status_code == 200 and sent.json()["sent"] is True
    assert (again.status_code, again.json()["error"]["code"]) == (429, "cooldown")
    assert ok.status_code == 200 and ok.json()["status"] == "approved"


def test_wrong_step_up_code_is_refused(client_for, operator_a, reviewer_a, payment):
    refund_id = create(client_for(operator_a), payment).json()["id"]
    client = client_for(reviewer_a)
    client.post("/api/v1/otp/send/")

    wrong = client.post(f"{REFUNDS}{refund_id}/approve/", {"otp_token": "000000"}, content_type="application/json")

    assert (wrong.status_code, wrong.json()["error"]["code"]) == (403, "otp_invalid")
    assert Refund.objects.get(pk=refund_id).status == "pending_review"


def test_reject_needs_a_reason(client_for, operator_a, reviewer_a, payment):
    refund_id = create(client_for(operator_a), payment).json()["id"]
    client = client_for(reviewer_a)

    missing = client.post(f"{REFUNDS}{refund_id}/reject/", {}, content_type="application/json")
    ok = client.post(f"{REFUNDS}{refund_id}/reject/", {"reason": "no"}, content_type="application/json")

    assert (missing.status_code, missing.json()["error"]["code"]) == (400, "reason_required")
    assert (ok.status_code, ok.json()["status"]) == (200, "rejected")


def test_idempotency_key_replays_the_first_answer(client_for, operator_a, payment):
    client = client_for(operator_a)

    first = create(client, payment, key="k-1")
    second = create(client, payment, key="k-1")
    other_body = create(client, payment, amount=1, key="k-1")
    other_key = create(client, payment, key="k-2")

    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    assert second["Idempotent-Replayed"] == "true"
    assert (other_body.status_code, other_body.json()["error"]["code"]) == (422, "idempotency_key_reused")
    assert other_key.status_code == 201
    assert Refund.objects.count() == 2


def test_idempotency_key_is_per_organisation_and_replays_refusals(
    client_for, operator_a, admin_b, make_payment, payment
):
    other = UserFactory(organisation=admin_b.organisation, roles=["merchant_operator"])
    mine = create(client_for(operator_a), payment, amount=99999, key="same")
    theirs = create(client_for(other), make_payment(admin_b.organisation), key="same")
    again = create(client_for(operator_a), payment, amount=99999, key="same")

    assert (mine.status_code, theirs.status_code, again.status_code) == (400, 201, 400)
    assert again.json() == mine.json()


def test_idempotency_key_in_progress_is_409(client_for, operator_a, payment):
    client = client_for(operator_a)
    IdempotencyKey.objects.create(
        organisation=operator_a.organisation,
        user=operator_a,
        key="busy",
        request_hash="x",
    )
    # Same hash as the request being made, still running.
    with mock.patch.object(idempotency, "request_hash", return_value="x"):
        response = create(client, payment, key="busy")

    assert (response.status_code, response.json()["error"]["code"]) == (409, "idempotency_conflict")
    assert Refund.objects.count() == 0


def test_batch_upload_submit_and_errors(
    client_for, operator_a, reviewer_a, payment, django_capture_on_commit_callbacks
):
    client = client_for(operator_a)
    content = "\r\n".join(
        text_batch([("RFA000000001", 100, payment.query_id, "x"), ("RFA000000002", 0, payment.query_id, "y")])
    ).encode()
    from django.core.files.uploadedfile import SimpleUploadedFile

    with django_capture_on_commit_callbacks(execute=True):
        up = client.post(BATCHES, {"file": SimpleUploadedFile("r.txt", content)}, HTTP_IDEMPOTENCY_KEY="u1")
    batch_id = up.json()["id"]
    detail = client.get(f"{BATCHES}{batch_id}/").json()
    errors = client.get(f"{BATCHES}{batch_id}/errors/").json()
    dup = client.post(BATCHES, {"file": SimpleUploadedFile("again.txt", content)})
    submitted = client.post(f"{BATCHES}{batch_id}/submit/")
    own = client.post(f"{BATCHES}{batch_id}/approve/", {}, content_type="application/json")
    with mock.patch("portal.batches.services._enqueue") as enqueue:
        with django_capture_on_commit_callbacks(execute=True):
            approved = client_for(reviewer_a).post(f"{BATCHES}{batch_id}/approve/", {}, content_type="application/json")

    assert up.status_code == 201
    assert {
        k: detail[k] for k in ("status", "total_lines", "valid_lines", "invalid_lines", "total_amount", "valid_amount")
    } == {
        "status": "validated",
        "total_lines": 2,
        "valid_lines": 1,
        "invalid_lines": 1,
        "total_amount": 100,
        "valid_amount": 100,
    }
    assert [(e["line"], e["column"], e["code"]) for e in errors["results"]] == [(4, "txnAmt", "amount_not_positive")]
    assert (dup.status_code, dup.json()["error"]["code"], dup.json()["error"]["batch_id"]) == (
        409,
        "file_duplicate",
        batch_id,
    )
    assert submitted.json()["status"] == "pending_review"
    assert (own.status_code, own.json()["error"]["code"]) == (403, "permission_denied")
    assert approved.json()["status"] == "approved"
    enqueue.assert_called_once_with("process_batch", batch_id)


def test_batch_of_another_merchant_is_404(client_for, operator_a, admin_b, payment, django_capture_on_commit_callbacks):
    from django.core.files.uploadedfile import SimpleUploadedFile

    content = "\r\n".join(text_batch([("RFA000000001", 100, payment.query_id, "x")])).encode()
    with django_capture_on_commit_callbacks(execute=True):
        batch_id = client_for(operator_a).post(BATCHES, {"file": SimpleUploadedFile("r.txt", content)}).json()["id"]
    other = client_for(UserFactory(organisation=admin_b.organisation, roles=["merchant_operator", "merchant_reviewer"]))

    for url in (f"{BATCHES}{batch_id}/", f"{BATCHES}{batch_id}/errors/", f"{BATCHES}{batch_id}/result/"):
        assert other.get(url).status_code == 404, url
    for url in (f"{BATCHES}{batch_id}/submit/", f"{BATCHES}{batch_id}/cancel/", f"{BATCHES}{batch_id}/approve/"):
        assert other.post(url, {}, content_type="application/json").status_code == 404, url
