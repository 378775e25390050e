"""Refund fixtures: payments in the ledger, approving with a fresh second factor, batch files."""

from __future__ import annotations

import io
import itertools
import time
from datetime import datetime, timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import TestCase
from django.utils import timezone
from openpyxl import Workbook

from payments.models import Transaction
from payments.settlement import business_tz, settlement_date_for
from portal.approvals.services import approval_decide
from portal.batches.models import Batch, BatchLine
from portal.batches.services import batch_upload
from refunds.models import Refund

_seq = itertools.count(1)


@pytest.fixture(autouse=True)
def _refund_settings(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.CELERY_TASK_ALWAYS_EAGER = True
    settings.ACP_QUERY_SLEEP = False


@pytest.fixture
def make_payment(db):
    """``make_payment(merchant, amount=10000, when=None, **fields)`` → a successful payment in the ledger
    (by default two days ago: a refund, not a void)."""

    def make(merchant, *, amount: int = 10000, when: datetime | None = None, **fields) -> Transaction:
        n = next(_seq)
        when = when or timezone.now() - timedelta(days=2)
        values = {
            "merchant": merchant,
            "acquirer_id": merchant.acquirer_id,
            "order_id": f"PAY{n:012d}",
            "txn_time": when,
            "txn_type": "01",
            "amount": amount,
            "status": "success",
            "resp_code": "00",
            "query_id": f"{when.astimezone(business_tz()):%Y%m%d%H%M%S}{n:07d}",
            "settle_date": settlement_date_for(when),
            "card_masked": "622202******0001",
            "source": "sandbox",
        }
        values.update(fields)
        return Transaction.objects.create(**values)

    return make


def decide(user, refund: Refund, decision: str = "approve", reason: str = "", fresh: bool = True):
    """The reviewer decides the refund's pending approval request (with a second factor just confirmed)."""
    from portal.approvals.models import ApprovalRequest

    request = ApprovalRequest.objects.get(pk=refund.approval_id)
    return approval_decide(
        actor=user,
        request_id=request.pk,
        decision=decision,
        seen_content_hash=request.content_hash,
        otp_verified_at=time.time() if fresh else None,
        reason=reason,
    )


def text_file(lines: list[str], *, name: str = "refunds.txt", encoding: str = "utf-8", eol: str = "\r\n"):
    return SimpleUploadedFile(name, (eol.join(lines) + eol).encode(encoding), content_type="text/plain")


def text_batch(
    rows: list[tuple], *, columns: str = "orderId|txnAmt|origQryId|reason", total=None, count=None
) -> list[str]:
    """A refund text file: header with totals, title line, rows (each a tuple of the columns)."""
    total = sum(int(r[1]) for r in rows) if total is None else total
    count = len(rows) if count is None else count
    return [f"5.0.0|{total}|{count}||", columns, *("|".join(str(v) for v in r) for r in rows)]


def xlsx_file(rows, *, name: str = "refunds.xlsx") -> SimpleUploadedFile:
    wb = Workbook()
    ws = wb.active
    for row in rows:
        ws.append(list(row))
    buf = io.BytesIO()
    wb.save(buf)
    return SimpleUploadedFile(name, buf.getvalue(), content_type="application/octet-stream")


def upload(user, f, merchant=None) -> Batch:
    """Upload ``f`` as a refund batch and run its validation (on-commit callbacks executed)."""
    with TestCase.captureOnCommitCallbacks(execute=True):
        batch = batch_upload(actor=user, kind="refund", uploaded_file=f, merchant=merchant)
    batch.refresh_from_db()
    return batch


def errors_of(batch) -> list[tuple]:
    """``(line_no, column, code)`` of the batch's invalid lines, in file order."""
    return list(
        BatchLine.objects.filter(batch=batch, status="invalid")
        .order_by("line_no")
        .values_list("line_no", "error_column", "error_code")
    )
