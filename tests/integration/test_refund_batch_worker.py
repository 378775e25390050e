"""A batch refund processed by a real Celery worker on Redis, killed with SIGKILL mid-batch and
restarted: every line is refunded exactly once (counted on the sandbox network side)."""

from __future__ import annotations

import time
from datetime import datetime, timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db.models import Count

from payments.models import Transaction
from payments.sandbox.models import SandboxTransaction
from payments.sandbox.services import new_query_id, trace_fields
from payments.settlement import business_tz, settlement_date_for
from portal.approvals.models import ApprovalRequest
from portal.approvals.services import approval_decide
from portal.batches.models import Batch, BatchLine
from portal.batches.services import batch_submit, batch_upload

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("pg_transactional_db")]

LINES = 60


def _payments(merchant, n):
    out = []
    base = datetime.now(business_tz()) - timedelta(days=3)
    for i in range(n):
        when = base + timedelta(seconds=i)
        trace_no, trace_time = trace_fields(when)
        qid = new_query_id(when, seed=f"kill{i}")
        SandboxTransaction.objects.create(
            mer_id=merchant.code, order_id=f"KPAY{i:08d}", txn_time=when, txn_type="01", amount=10000,
            status="success", resp_code="00", query_id=qid, settle_date=settlement_date_for(when),
            trace_no=trace_no, trace_time=trace_time, card_masked="622202*********0001", card_hash="x" * 64,
            card_type="01",
        )  # fmt: skip
        out.append(
            Transaction.objects.create(
                merchant=merchant,
                acquirer_id=merchant.acquirer_id,
                order_id=f"KPAY{i:08d}",
                txn_time=when,
                txn_type="01",
                amount=10000,
                status="success",
                resp_code="00",
                query_id=qid,
                settle_date=settlement_date_for(when),
                source="sandbox",
            )  # fmt: skip
        )
    return out


def test_killed_worker_never_refunds_a_line_twice(
    celery_worker_process, live_server, wait_until, operator_a, reviewer_a, settings
):
    worker = celery_worker_process
    worker.env.update(
        ACP_BASE_URL=live_server.url + "/sandbox/acp",
        ACP_BACK_URL=live_server.url + "/gateway/acp/notify/",
        BATCH_CHUNK_SIZE="10",
        CELERY_VISIBILITY_TIMEOUT="10",
    )
    settings.ACP_BASE_URL = live_server.url + "/sandbox/acp"
    settings.ACP_BACK_URL = live_server.url + "/gateway/acp/notify/"
    settings.BATCH_CHUNK_SIZE = 10
    worker.restart()
    payments = _payments(operator_a.organisation, LINES)
    rows = [f"RFK{i:09d}|{1000 + i}|{p.query_id}|kill" for i, p in enumerate(payments)]
    total = sum(1000 + i for i in range(LINES))
    content = "\r\n".join([f"5.0.0|{total}|{LINES}||", "orderId|txnAmt|origQryId|reason", *rows]).encode()
    batch = batch_upload(actor=operator_a, kind="refund", uploaded_file=SimpleUploadedFile("kill.txt", content))

    assert wait_until(lambda: Batch.objects.get(pk=batch.pk).status == "validated", timeout=60), worker.log_path
    batch_submit(actor=operator_a, batch=Batch.objects.get(pk=batch.pk))
    request = ApprovalRequest.objects.get(pk=Batch.objects.get(pk=batch.pk).approval_id)
    approval_decide(
        actor=reviewer_a, request_id=request.pk, decision="approve",
        seen_content_hash=request.content_hash, otp_verified_at=time.time(),
    )  # fmt: skip

    def done_lines():
        return BatchLine.objects.filter(batch=batch, status__in=["succeeded", "failed"]).count()

    assert wait_until(lambda: done_lines() >= 5, timeout=60), worker.log_path
    worker.kill()
    killed_at = done_lines()
    worker.restart()

    finished = wait_until(
        lambda: Batch.objects.get(pk=batch.pk).status in ("completed", "partially_completed", "failed"), timeout=180
    )
    batch.refresh_from_db()
    assert finished, (batch.status, done_lines(), worker.log_path)
    assert killed_at < LINES
    assert (batch.status, batch.succeeded_lines, batch.failed_lines) == ("completed", LINES, 0)
    per_order = dict(
        SandboxTransaction.objects.filter(order_id__startswith="RFK", txn_type="04")
        .values_list("order_id")
        .annotate(n=Count("pk"))
    )
    assert len(per_order) == LINES and set(per_order.values()) == {1}
    assert all(
        p.refunded_amount == 1000 + i
        for i, p in enumerate(Transaction.objects.filter(order_id__startswith="KPAY").order_by("order_id"))
    )
