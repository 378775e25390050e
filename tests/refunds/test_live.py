"""The full happy path against the embedded sandbox acquirer over real HTTP (live_server): a single
refund and a void are approved, sent, notified and confirmed; a batch file with good and bad lines is
validated, approved, processed line by line and returns a correct result file."""

from __future__ import annotations

import time
from datetime import datetime, timedelta

import pytest
from django.db import transaction

from payments.models import Transaction
from payments.sandbox.models import SandboxTransaction
from payments.sandbox.services import new_query_id, trace_fields
from payments.settlement import business_tz, settlement_date_for
from portal.approvals.models import ApprovalRequest
from portal.approvals.services import approval_decide
from portal.batches import storage
from portal.batches.models import BatchLine
from portal.batches.services import batch_submit, batch_upload
from portal.celery import app as celery_app
from refunds.models import Refund
from refunds.services import refund_request
from tests.sandbox.fixtures import acp_settings, sandbox_dir  # noqa: F401

from .conftest import text_batch, text_file

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def live(acp_settings, live_server):  # noqa: F811
    acp_settings.ACP_BASE_URL = live_server.url + "/sandbox/acp"
    acp_settings.ACP_BACK_URL = live_server.url + "/gateway/acp/notify/"
    acp_settings.CELERY_TASK_ALWAYS_EAGER = True
    before = celery_app.conf.task_always_eager
    celery_app.conf.update(task_always_eager=True)
    yield live_server
    celery_app.conf.update(task_always_eager=before)


def paid(merchant, *, amount=10000, when=None) -> Transaction:
    """A payment known to the network (sandbox) and to the ledger, same ids."""
    when = when or datetime.now(business_tz()) - timedelta(days=3)
    trace_no, trace_time = trace_fields(when)
    network = SandboxTransaction.objects.create(
        mer_id=merchant.code,
        order_id=f"PAY{when:%H%M%S%f}",
        txn_time=when,
        txn_type="01",
        amount=amount,
        status="success",
        resp_code="00",
        query_id=new_query_id(when),
        settle_date=settlement_date_for(when),
        trace_no=trace_no,
        trace_time=trace_time,
        card_masked="622202*********0001",
        card_hash="x" * 64,
        card_type="01",
    )
    return Transaction.objects.create(
        merchant=merchant,
        acquirer_id=merchant.acquirer_id,
        order_id=network.order_id,
        txn_time=when,
        txn_type="01",
        amount=amount,
        status="success",
        resp_code="00",
        query_id=network.query_id,
        settle_date=network.settle_date,
        source="sandbox",
    )


def approve(reviewer, approval_id):
    request = ApprovalRequest.objects.get(pk=approval_id)
    approval_decide(
        actor=reviewer,
        request_id=request.pk,
        decision="approve",
        seen_content_hash=request.content_hash,
        otp_verified_at=time.time(),
    )


def test_single_refund_and_void_end_to_end(live, operator_a, reviewer_a):
    old = paid(operator_a.organisation, amount=10000)
    today = paid(operator_a.organisation, amount=3000, when=datetime.now(business_tz()).replace(microsecond=0))
    refund = refund_request(actor=operator_a, original=old, amount=2500, reason="damaged")
    void = None
    if today.settle_date == settlement_date_for(datetime.now(business_tz())):
        void = refund_request(actor=operator_a, original=today, amount=3000, reason="cancelled order")
        assert void.kind == "void"

    approve(reviewer_a, refund.approval_id)
    if void:
        approve(reviewer_a, void.approval_id)

    refund.refresh_from_db()
    old.refresh_from_db()
    assert refund.status == "succeeded"
    assert (refund.ledger_txn.txn_type, refund.ledger_txn.amount, refund.ledger_txn.status) == ("04", 2500, "success")
    assert old.refunded_amount == 2500
    assert SandboxTransaction.objects.filter(order_id=refund.order_id).count() == 1
    if void:
        void.refresh_from_db()
        today.refresh_from_db()
        assert (void.status, void.ledger_txn.txn_type, today.refunded_amount) == ("succeeded", "31", 3000)


def test_batch_file_end_to_end_with_result_file(live, operator_a, reviewer_a):
    p1, p2 = paid(operator_a.organisation, amount=10000), paid(operator_a.organisation, amount=5000)
    rows = [
        ("RFL000000001", 2500, p1.query_id, "a"),
        ("RFL000000002", 5000, p2.query_id, "b"),
        ("RFL000000003", 9999, p1.query_id, "too much"),
        ("RFL000000004", 1099, p1.query_id, "declined by the issuer (sandbox: amount ending 99)"),
    ]
    batch = batch_upload(actor=operator_a, kind="refund", uploaded_file=text_file(text_batch(rows)))
    batch.refresh_from_db()
    assert (batch.status, batch.valid_lines, batch.invalid_lines) == ("validated", 3, 1)

    batch_submit(actor=operator_a, batch=batch)
    batch.refresh_from_db()
    approve(reviewer_a, batch.approval_id)

    batch.refresh_from_db()
    assert (batch.status, batch.succeeded_lines, batch.failed_lines, batch.succeeded_amount) == (
        "partially_completed",
        2,
        1,
        7500,
    )
    for order_id in ("RFL000000001", "RFL000000002", "RFL000000004"):
        assert SandboxTransaction.objects.filter(order_id=order_id).count() == 1
    assert not SandboxTransaction.objects.filter(order_id="RFL000000003").exists()
    p1.refresh_from_db()
    p2.refresh_from_db()
    assert (p1.refunded_amount, p2.refunded_amount) == (2500, 5000)
    with storage.open_plaintext(batch.result_name) as stream:
        lines = stream.read().decode().split("\r\n")
    assert lines[0] == "5.0.0|18598|4|||7500|2"
    by_order = {line.split("|")[0]: line.split("|") for line in lines[2:] if line}
    assert by_order["RFL000000001"][-6][:2] == "00" and len(by_order["RFL000000001"][-4]) == 21
    assert by_order["RFL000000004"][-6] == "60"
    assert by_order["RFL000000003"][-6] == ""
    assert BatchLine.objects.filter(batch=batch, status="succeeded").count() == 2
    with transaction.atomic():
        assert Refund.objects.count() == 0
