"""The ACP notification receiver: POST /gateway/acp/notify/ (signed, idempotent, audited refusals)."""

from __future__ import annotations

import pytest
from django.urls import reverse

from payments.gateway import tasks as gateway_tasks
from payments.gateway.acp.testing import build_ca
from payments.models import Transaction
from portal.audit.models import AuditEvent
from tests.sandbox import fixtures as sandbox_fixtures
from tests.sandbox.fixtures import form, notification_fields

# The sandbox's key material and settings (fixtures shared with tests/sandbox/).
sandbox_dir = sandbox_fixtures.sandbox_dir
acp_settings = sandbox_fixtures.acp_settings
network_signer = sandbox_fixtures.network_signer

pytestmark = pytest.mark.django_db
URL = "/gateway/acp/notify/"
FORM = "application/x-www-form-urlencoded"


@pytest.fixture
def enqueued(monkeypatch):
    """Record the confirm jobs instead of sending them to the broker."""
    calls: list[int] = []
    monkeypatch.setattr(gateway_tasks.confirm_transaction, "delay", calls.append)
    return calls


@pytest.fixture
def post(client, acp_settings, django_capture_on_commit_callbacks):
    def send(body: bytes, query: str = ""):
        with django_capture_on_commit_callbacks(execute=True):
            return client.post(URL + query, data=body, content_type=FORM)

    return send


def rejections():
    return list(AuditEvent.objects.filter(action="gateway.notify_rejected"))


def test_url_is_the_documented_one():
    assert reverse("gateway:notify") == URL


def test_signed_notification_is_recorded_once_however_often_it_is_posted(post, merchant_a, network_signer, enqueued):
    body = form(network_signer.sign(notification_fields(merchant_a.code), include_cert=True))

    first = post(body)
    txn = Transaction.objects.get()
    updated_at = txn.updated_at
    second, third = post(body), post(body)

    assert [first.status_code, second.status_code, third.status_code] == [200, 200, 200]
    assert first.content == b"ok"
    assert Transaction.objects.count() == 1
    txn.refresh_from_db()
    assert txn.updated_at == updated_at
    assert (txn.merchant, txn.order_id, txn.query_id, txn.amount, txn.status, txn.source) == (
        merchant_a,
        "ORDER20260310A",
        "202603101230051234567",
        12345,
        "success",
        "notification",
    )
    assert txn.card_masked == "622202*********0001"
    assert txn.settle_date.isoformat() == "2026-03-10"
    assert enqueued == [txn.pk]  # one confirm-by-query job, for the first copy only
    assert rejections() == []


def test_failed_payment_is_recorded_as_failed(post, merchant_a, network_signer, enqueued):
    body = form(network_signer.sign(notification_fields(merchant_a.code, respCode="64"), include_cert=True))

    assert post(body).status_code == 200

    assert Transaction.objects.get().status == "failed"


def test_tampered_amount_is_refused_and_audited(post, merchant_a, network_signer, enqueued):
    signed = network_signer.sign(notification_fields(merchant_a.code), include_cert=True)
    signed["txnAmt"] = "1"

    response = post(form(signed))

    assert response.status_code == 400
    assert Transaction.objects.count() == 0
    [event] = rejections()
    assert (event.outcome, event.details["reason"], event.details["orderId"]) == (
        "failure",
        "bad_signature",
        "ORDER20260310A",
    )
    assert event.organisation == merchant_a
    assert "6222020000000090001" not in str(event.details)
    assert enqueued == []


def test_signed_by_another_ca_is_refused(post, merchant_a, enqueued):
    impostor = build_ca(key_size=1024).signer()
    response = post(form(impostor.sign(notification_fields(merchant_a.code), include_cert=True)))

    assert response.status_code == 400
    assert Transaction.objects.count() == 0
    assert [e.details["reason"] for e in rejections()] == ["bad_signature"]


def test_unknown_merchant_is_refused(post, merchant_a, network_signer, enqueued):
    body = form(network_signer.sign(notification_fields("999999999999999"), include_cert=True))

    response = post(body)

    assert response.status_code == 400
    assert Transaction.objects.count() == 0
    assert [e.details["reason"] for e in rejections()] == ["unknown_merchant"]


@pytest.mark.parametrize("body", [b"", b"not a form", b"merId=%ZZ&&=x", b"orderId=%FF%FE"])
def test_malformed_body_is_refused(post, merchant_a, body, enqueued):
    response = post(body)

    assert response.status_code == 400
    assert Transaction.objects.count() == 0
    assert [e.details["reason"] for e in rejections()] == ["malformed"]


def test_signed_but_incomplete_message_is_refused(post, merchant_a, network_signer, enqueued):
    fields = notification_fields(merchant_a.code)
    del fields["txnAmt"]

    response = post(form(network_signer.sign(fields, include_cert=True)))

    assert response.status_code == 400
    assert [e.details["reason"] for e in rejections()] == ["malformed"]


def test_query_string_parameters_are_ignored(post, merchant_a, network_signer, enqueued):
    body = form(network_signer.sign(notification_fields(merchant_a.code), include_cert=True))

    response = post(body, query="?txnAmt=1&orderId=HACKED0001&merId=999999999999999")

    assert response.status_code == 200
    txn = Transaction.objects.get()
    assert (txn.order_id, txn.amount) == ("ORDER20260310A", 12345)


def test_get_is_not_allowed(client, acp_settings):
    assert client.get(URL).status_code == 405


def test_anonymous_post_needs_no_session_nor_csrf_token(acp_settings, merchant_a, network_signer, enqueued):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    body = form(network_signer.sign(notification_fields(merchant_a.code), include_cert=True))

    assert strict.post(URL, data=body, content_type=FORM).status_code == 200
