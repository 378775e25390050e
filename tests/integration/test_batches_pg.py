"""The PostgreSQL paths of batch validation: lines written with COPY, order ids held with one array
INSERT ... ON CONFLICT, the refund kind's set-based reads with array parameters, and the cap carried
across chunks of one file (in the run's state) and across batches (from the database)."""

from __future__ import annotations

import itertools
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.utils import timezone

from payments.models import Transaction
from payments.settlement import business_tz, settlement_date_for
from portal.batches.models import Batch, BatchLine, BatchOrderId
from portal.batches.services import batch_upload, batch_validate

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL (DATABASE_URL=postgres://...)"),
]

_seq = itertools.count(1)


@pytest.fixture(autouse=True)
def _batch_settings(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.BATCH_VALIDATE_CHUNK = 3  # several chunks for a handful of lines


@pytest.fixture
def pay(db):
    def make(merchant, amount=10000):
        n = next(_seq)
        when = timezone.now() - timedelta(days=2)
        return Transaction.objects.create(
            merchant=merchant,
            acquirer_id=merchant.acquirer_id,
            order_id=f"PGPAY{n:010d}",
            txn_time=when,
            txn_type="01",
            amount=amount,
            status="success",
            resp_code="00",
            query_id=f"{when.astimezone(business_tz()):%Y%m%d%H%M%S}{n:07d}",
            settle_date=settlement_date_for(when),
            card_masked="622202******0001",
            source="sandbox",
        )

    return make


def upload_and_validate(user, rows, name="pg.txt") -> Batch:
    """Upload (the transaction of the test never commits, so nothing is enqueued) and run the
    validation body directly, as the worker does."""
    total = sum(int(r[1]) for r in rows)
    lines = [f"5.0.0|{total}|{len(rows)}||", "orderId|txnAmt|origQryId|reason", *("|".join(map(str, r)) for r in rows)]
    f = SimpleUploadedFile(name, ("\r\n".join(lines) + "\r\n").encode(), content_type="text/plain")
    batch = batch_upload(actor=user, kind="refund", uploaded_file=f)
    batch_validate(batch_id=batch.pk)
    batch.refresh_from_db()
    return batch


def lines_of(batch):
    return list(
        BatchLine.objects.filter(batch=batch)
        .order_by("line_no")
        .values_list("line_no", "status", "error_code", "error_column", "chunk_no")
    )


def test_lines_are_copied_with_their_json_and_counters(operator_a, pay):
    p1, p2 = pay(operator_a.organisation, 10000), pay(operator_a.organisation, 5000)
    rows = [
        ("RFPG00000001", 2500, p1.query_id, "损坏 damaged"),
        ("RFPG00000002", 5000, p2.query_id, "tab\there \\ back"),
        ("RFPG00000003", 100, "NOSUCHQUERYID00000001", "x"),
        ("RFPG00000004", 10, p1.query_id, ""),
    ]

    batch = upload_and_validate(operator_a, rows)

    assert (batch.status, batch.total_lines, batch.valid_lines, batch.invalid_lines) == ("validated", 4, 3, 1)
    assert (batch.total_amount, batch.valid_amount) == (7610, 7510)
    assert lines_of(batch) == [
        (3, "valid", "", "", 0),
        (4, "valid", "", "", 0),
        (5, "invalid", "orig_not_found", "origQryId", None),
        (6, "valid", "", "", 0),
    ]
    first = BatchLine.objects.get(batch=batch, line_no=3)
    assert (first.ref, first.merchant_id, first.amount) == (str(p1.pk), operator_a.organisation_id, 2500)
    assert first.data["reason"] == "损坏 damaged" and first.data["origId"] == p1.pk
    assert BatchLine.objects.get(batch=batch, line_no=4).data["reason"] == "tab\there \\ back"
    assert BatchLine.objects.get(batch=batch, line_no=5).error_params == {}
    held = BatchOrderId.objects.filter(batch=batch).order_by("line_no").values_list("order_id", "line_no")
    assert list(held) == [("RFPG00000001", 3), ("RFPG00000002", 4), ("RFPG00000004", 6)]


def test_cap_is_carried_across_chunks_of_one_file(operator_a, pay):
    payment = pay(operator_a.organisation, 10000)
    # chunks of 3 lines: the fourth and fifth lines meet what the first chunk took
    rows = [(f"RFCAP000000{i}", 3000, payment.query_id, "") for i in range(1, 6)]

    batch = upload_and_validate(operator_a, rows)

    assert [(n, s, c) for n, s, c, _col, _chunk in lines_of(batch)] == [
        (3, "valid", ""),
        (4, "valid", ""),
        (5, "valid", ""),
        (6, "invalid", "amount_exceeds"),
        (7, "invalid", "amount_exceeds"),
    ]
    assert BatchLine.objects.get(batch=batch, line_no=6).error_params["refundable"] == "10.00"


def test_cap_and_order_ids_across_batches(operator_a, pay):
    payment = pay(operator_a.organisation, 10000)
    first = upload_and_validate(operator_a, [("RFXB00000001", 6000, payment.query_id, "")], name="a.txt")

    second = upload_and_validate(
        operator_a,
        [
            ("RFXB00000002", 5000, payment.query_id, ""),
            ("RFXB00000001", 100, payment.query_id, ""),
            ("RFXB00000003", 4000, payment.query_id, ""),
        ],
        name="b.txt",
    )

    assert first.status == "validated"
    assert [(n, s, c) for n, s, c, _col, _chunk in lines_of(second)] == [
        (3, "invalid", "amount_exceeds"),
        (4, "invalid", "duplicate_order_id"),
        (5, "valid", ""),
    ]
    duplicate = BatchLine.objects.get(batch=second, line_no=4)
    assert duplicate.error_params == {"order_id": "RFXB00000001", "batch_id": first.pk, "line_no": 3}


def test_duplicate_order_id_in_a_later_chunk_names_the_first_line(operator_a, pay):
    p1, p2 = pay(operator_a.organisation), pay(operator_a.organisation)
    rows = [
        ("RFDUP0000001", 100, p1.query_id, ""),
        ("RFDUP0000002", 100, p1.query_id, ""),
        ("RFDUP0000003", 100, p1.query_id, ""),
        ("RFDUP0000001", 100, p2.query_id, ""),
    ]

    batch = upload_and_validate(operator_a, rows)

    assert [(n, s, c) for n, s, c, _col, _chunk in lines_of(batch)] == [
        (3, "valid", ""),
        (4, "valid", ""),
        (5, "valid", ""),
        (6, "invalid", "duplicate_order_id_in_file"),
    ]
    assert BatchLine.objects.get(batch=batch, line_no=6).error_params == {"order_id": "RFDUP0000001", "line_no": 3}
