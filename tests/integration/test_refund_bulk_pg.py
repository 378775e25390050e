"""The PostgreSQL fast path of batch refund validation (``refunds.bulk``) against the chunked Python path.

Each file is validated twice in one database, once by each path (the first batch cancelled in between, so
that it holds no order id and no amount): the lines must come out the same (status, error code, column and
parameters, amount, order id, original, data, chunk) and so must the batch's counters. The files mix lines
the SQL takes as they are with lines only the parser can judge (non-ASCII, tabs, backslashes, leading
zeros, spaces, Excel numbers, ragged rows) and every error of the ledger checks. A write that fails leaves
nothing behind, and the retry gives the same batch."""

from __future__ import annotations

import dataclasses
import io
import time
from datetime import timedelta
from unittest import mock

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import DatabaseError, connection
from django.utils import timezone
from openpyxl import Workbook

from payments.settlement import business_tz
from portal.batches import ingest
from portal.batches.models import Batch, BatchLine, BatchOrderId
from portal.batches.registry import get_kind
from portal.batches.services import batch_cancel, batch_upload, batch_validate
from refunds import bulk as refund_bulk
from tests.refunds.conftest import make_payment

__all__ = ["make_payment"]  # the fixture, shared with tests/refunds

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL (DATABASE_URL=postgres://...)"),
]


@pytest.fixture(autouse=True)
def _batch_settings(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.BATCH_VALIDATE_CHUNK = 4  # the Python path in several chunks
    settings.BATCH_CHUNK_SIZE = 3  # several processing chunks


@pytest.fixture
def pay(make_payment):
    """``make_payment`` of the refund tests, at whole seconds (files name originals by time to the second)."""

    def make(merchant, amount=10000, *, when=None, **fields):
        when = (when or timezone.now() - timedelta(days=2)).replace(microsecond=0)
        return make_payment(merchant, amount=amount, when=when, **fields)

    return make


@pytest.fixture
def committed(pg_transactional_db, settings):
    """Real transactions (the split into two connections happens outside a caller's transaction), with
    the uploads' validation left to the test: a Celery worker of another test must not take it."""
    settings.BATCH_BULK_SPLIT_LINES = 4
    with mock.patch("portal.batches.services._enqueue"):
        yield


def _python_path():
    """The refund kind without its fast path, as on SQLite."""
    kind = get_kind("refund")
    return mock.patch.dict("portal.batches.registry._KINDS", {"refund": dataclasses.replace(kind, bulk=None)})


def _validate(user, make_file, *, fast: bool, merchant=None) -> Batch:
    batch = batch_upload(actor=user, kind="refund", uploaded_file=make_file(), merchant=merchant)
    if fast:
        batch_validate(batch_id=batch.pk)
    else:
        with _python_path():
            batch_validate(batch_id=batch.pk)
    batch.refresh_from_db()
    return batch


def _snapshot(batch) -> tuple:
    counters = (
        batch.status,
        batch.error_code,
        batch.total_lines,
        batch.valid_lines,
        batch.invalid_lines,
        batch.total_amount,
        batch.valid_amount,
        batch.chunk_count,
    )
    lines = list(
        BatchLine.objects.filter(batch=batch)
        .order_by("line_no")
        .values_list(
            "line_no",
            "status",
            "error_code",
            "error_column",
            "error_params",
            "order_id",
            "amount",
            "ref",
            "merchant_id",
            "data",
            "chunk_no",
        )
    )
    held = list(BatchOrderId.objects.filter(batch=batch).order_by("line_no").values_list("order_id", "line_no"))
    return counters, lines, held


def _both_paths(user, make_file, merchant=None) -> tuple:
    """Validate the file by the fast path, then (the first batch cancelled) by the Python path; check
    that both give the same batch; the second batch and the (common) snapshot."""
    fast = _validate(user, make_file, fast=True, merchant=merchant)
    fast_snapshot = _snapshot(fast)
    if fast.status in {"validated", "uploaded", "validating"}:
        batch_cancel(actor=user, batch=fast)
    slow = _validate(user, make_file, fast=False, merchant=merchant)
    slow_snapshot = _snapshot(slow)
    assert fast_snapshot[0] == slow_snapshot[0]
    for fast_line, slow_line in zip(fast_snapshot[1], slow_snapshot[1], strict=True):
        assert fast_line == slow_line
    assert fast_snapshot[2] == slow_snapshot[2]
    return slow, fast_snapshot


def _text(lines: list[str], *, encoding="utf-8", eol="\r\n", bom=False, name="bulk.txt"):
    body = (eol.join(lines) + eol).encode(encoding)
    if bom:
        body = b"\xef\xbb\xbf" + body
    return lambda: SimpleUploadedFile(name, body, content_type="text/plain")


def _xlsx(rows, name="bulk.xlsx"):
    wb = Workbook()
    ws = wb.active
    for row in rows:
        ws.append(list(row))
    buf = io.BytesIO()
    wb.save(buf)
    body = buf.getvalue()
    return lambda: SimpleUploadedFile(name, body, content_type="application/octet-stream")


def _header(rows: list[str], title: str) -> list[str]:
    total = count = 0
    for row in rows:
        if not row.strip():
            continue
        count += 1
        amount = row.split("|")[1].strip() if "|" in row else ""
        if amount.isascii() and amount.isdigit() and len(amount) <= 15:
            total += int(amount)
    return [f"5.0.0|{total}|{count}||", title, *rows]


def _errors(snapshot) -> list[tuple]:
    return [(n, code, column) for n, status, code, column, *_rest in snapshot[1] if status == "invalid"]


def test_text_file_of_good_and_bad_lines_gives_the_same_lines_on_both_paths(operator_a, admin_b, pay):
    _check_mixed_file(operator_a, admin_b, pay)


def test_a_large_file_written_by_two_connections_gives_the_same_lines(committed, operator_a, admin_b, pay, settings):
    """Outside a test transaction the fast path writes a file of ``BATCH_BULK_SPLIT_LINES`` lines or more
    by two connections, split at the middle line: the same lines and counters as the Python path."""
    settings.BATCH_BULK_SPLIT_LINES = 10
    real = ingest._insert_bulk
    writes = []

    def insert_and_note(cursor, select_sql, args):
        cursor.execute("SELECT pg_backend_pid()")
        writes.append((args.get("_from"), args.get("_to"), cursor.fetchone()[0]))
        return real(cursor, select_sql, args)

    with mock.patch.object(ingest, "_insert_bulk", insert_and_note):
        _check_mixed_file(operator_a, admin_b, pay)
    fast = [w for w in writes if w[0] is not None]  # the earlier one-line file was written by one
    assert sorted((w[0], w[1]) for w in fast) == [(3, 17), (18, 32)]  # lines 3 to 32, split at 18
    assert fast[0][2] != fast[1][2]  # two connections


def _check_mixed_file(operator_a, admin_b, pay):
    merchant = operator_a.organisation
    ok = pay(merchant, 10000)
    capped = pay(merchant, 5000)
    other = pay(merchant, 8000)
    failed = pay(merchant, status="failed")
    old = pay(merchant, when=timezone.now() - timedelta(days=331))
    foreign = pay(admin_b.organisation)
    ledger_order = pay(merchant, 100).order_id  # an order id the merchant's ledger already has
    with mock.patch("refunds.tasks.send_refund.delay"):
        from refunds.services import refund_request

        single = refund_request(actor=operator_a, original=other, amount=100, reason="x")
    earlier_file = _text(_header([f"RFBEARLIER01|100|{other.query_id}|x"], "orderId|txnAmt|origQryId|reason"))
    earlier = _validate(operator_a, earlier_file, fast=True)
    rows = [
        f"RFBOK0000001|2500|{ok.query_id}|plain reason",  # 3 valid
        f"RFBOK0000002|2500|{ok.query_id}|损坏 damaged",  # 4 valid (non-ASCII: the parser)
        f"RFBOK0000003|0100|{ok.query_id}|leading zero",  # 5 valid (the parser reads 0100)
        f" RFBOK0000004 |100|{ok.query_id}| spaced ",  # 6 valid (spaces: the parser)
        f"RFBOK0000005|100|{ok.query_id}|tab\there \\ back",  # 7 valid (tab, backslash: the parser)
        "",  # 8 blank
        f"RFBBAD000001|abc|{ok.query_id}|x",  # 9 amount_format
        f"RFBBAD000002|0|{ok.query_id}|x",  # 10 amount_not_positive
        f"RFBBAD000003|1.5|{ok.query_id}|x",  # 11 amount_format
        "RFBBAD000004|100|2.01707E+20|x",  # 12 excel_number_id
        "RFBBAD000005|100|201707E20|x",  # 13 excel_number_id (letters and digits only)
        f"SHORT|100|{ok.query_id}|x",  # 14 order_id_format
        f"RFBOK0000001|100|{other.query_id}|x",  # 15 duplicate of line 3
        "RFBNOTFOUND1|100|NOSUCHQUERYID00000001|x",  # 16 orig_not_found
        "RFBNOTFOUND1|100|NOSUCHQUERYID00000001|x",  # 17 duplicate of line 16 (invalid, first keeps it)
        f"RFBFOREIGN01|100|{foreign.query_id}|x",  # 18 another merchant's payment: not found
        f"RFBFAILED001|100|{failed.query_id}|x",  # 19 orig_not_success
        f"RFBOLD000001|100|{old.query_id}|x",  # 20 window_expired
        f"RFBCAP000001|3000|{capped.query_id}|x",  # 21 valid
        f"RFBCAP000002|3000|{capped.query_id}|x",  # 22 amount_exceeds (2000 left)
        f"RFBCAP000003|2000|{capped.query_id}|x",  # 23 valid: exactly the rest
        f"{single.order_id}|100|{other.query_id}|x",  # 24 order_id_used (a single refund)
        f"{ledger_order}|100|{other.query_id}|x",  # 25 order_id_used (the ledger)
        f"RFBEARLIER01|100|{other.query_id}|x",  # 26 duplicate_order_id (the earlier batch)
        f"RFBEXTRA0001|100|{other.query_id}|x|y",  # 27 column_count
        f"RFBVOID00001|8000|{other.query_id}|x",  # 28 amount_exceeds (other: 100 held, 100 earlier batch)
        f"RFBOTHER0001|7800|{other.query_id}|x",  # 29 valid: all that is left
        "   ",  # 30 blank
        f"RFBLONG00001|100|{ok.query_id}|{'r' * 300}",  # 31 field_too_long
        f"RFBFORMULA01|100|{ok.query_id}|=SUM(A1)",  # 32 formula
    ]

    batch, snapshot = _both_paths(operator_a, _text(_header(rows, "orderId|txnAmt|origQryId|reason"), bom=True))

    assert earlier.status == "validated"
    assert (batch.status, batch.total_lines, batch.valid_lines) == ("validated", 28, 8)
    assert _errors(snapshot) == [
        (9, "amount_format", "txnAmt"),
        (10, "amount_not_positive", "txnAmt"),
        (11, "amount_format", "txnAmt"),
        (12, "excel_number_id", "origQryId"),
        (13, "excel_number_id", "origQryId"),
        (14, "order_id_format", "orderId"),
        (15, "duplicate_order_id_in_file", "orderId"),
        (16, "orig_not_found", "origQryId"),
        (17, "duplicate_order_id_in_file", "orderId"),
        (18, "orig_not_found", "origQryId"),
        (19, "orig_not_success", "origQryId"),
        (20, "window_expired", "origQryId"),
        (22, "amount_exceeds", "txnAmt"),
        (24, "order_id_used", "orderId"),
        (25, "order_id_used", "orderId"),
        (26, "duplicate_order_id", "orderId"),
        (27, "column_count", ""),
        (28, "amount_exceeds", "txnAmt"),
        (31, "field_too_long", "reason"),
        (32, "formula", "reason"),
    ]
    params = {n: p for n, _s, _c, _col, p, *_rest in snapshot[1]}
    assert params[15] == {"order_id": "RFBOK0000001", "line_no": 3}
    assert params[17] == {"order_id": "RFBNOTFOUND1", "line_no": 16}
    assert params[22] == {"amount": "30.00", "refundable": "20.00"}
    assert params[26] == {"order_id": "RFBEARLIER01", "batch_id": earlier.pk, "line_no": 3}
    assert params[20] == {"days": 330}
    lines = {n: rest for n, *rest in snapshot[1]}
    assert lines[4][8]["reason"] == "损坏 damaged" and lines[7][8]["reason"] == "tab\there \\ back"
    assert lines[5][5] == 100 and lines[6][4] == "RFBOK0000004"
    assert [n for n, *_r in snapshot[1]] == [n for n in range(3, 33) if n not in (8, 30)]


def test_gbk_file_with_original_order_and_time_on_both_paths(operator_a, pay):
    merchant = operator_a.organisation
    first = pay(merchant, 10000)
    second = pay(merchant, 10000)
    today = pay(merchant, 3000, when=timezone.now() - timedelta(minutes=5))

    def at(payment):
        return f"{payment.txn_time.astimezone(business_tz()):%Y%m%d%H%M%S}"

    rows = [
        f"RFBG00000001|1000|{first.order_id}|{at(first)}|客户退货",  # valid
        f"RFBG00000002|1000|{first.order_id}|20200101000000|x",  # orig_time_mismatch
        f"RFBG00000003|1000|{second.order_id}|20230229120000|x",  # orig_time_format (no 29 February)
        f"RFBG00000004|1000|{second.order_id}||x",  # orig_missing
        f"RFBG00000005|1000|NOSUCHORDER|{at(second)}|x",  # orig_not_found
        f"RFBG00000006|3000|{today.order_id}|{at(today)}|x",  # valid, a void (today, full amount)
        f"RFBG00000007|1000|{second.order_id}|{at(second)}|",  # valid
    ]
    lines = _header(rows, "订单号|退货金额(分)|原订单号|原交易时间|退货原因")

    batch, snapshot = _both_paths(operator_a, _text(lines, encoding="gbk", eol="\n"))

    assert (batch.status, batch.valid_lines) == ("validated", 3)
    assert _errors(snapshot) == [
        (4, "orig_time_mismatch", "origTxnTime"),
        (5, "orig_time_format", "origTxnTime"),
        (6, "orig_missing", "origQryId"),
        (7, "orig_not_found", "origOrderId"),
    ]
    data = {n: rest[8] for n, *rest in snapshot[1]}
    assert data[3]["reason"] == "客户退货" and data[3]["txnType"] == "04"
    assert data[8]["txnType"] == "31"


def test_merchant_number_column_on_both_paths(acquirer_reviewer, merchant_a, pay):
    payment = pay(merchant_a, 10000)
    rows = [
        f"RFBM00000001|100|{payment.query_id}|{merchant_a.code}",
        f"RFBM00000002|100|{payment.query_id}|898310000000001",
        f"RFBM00000003|100|{payment.query_id}|",
    ]

    batch, snapshot = _both_paths(
        acquirer_reviewer, _text(_header(rows, "orderId|txnAmt|origQryId|merId")), merchant=merchant_a
    )

    assert _errors(snapshot) == [(4, "merid_mismatch", "merId")]
    assert snapshot[1][1][4] == {"value": "898310000000001", "merchant": merchant_a.code}


def test_xlsx_file_of_good_and_bad_rows_on_both_paths(operator_a, pay):
    merchant = operator_a.organisation
    payment = pay(merchant, 10000)
    rows = [
        ["订单号", "退货金额(元)", "原交易查询流水号", "退货原因"],
        ["RFBX00000001", 12.5, payment.query_id, "客户退货"],  # valid (non-ASCII: the parser)
        ["RFBX00000002", "0.01", payment.query_id, None],  # valid
        ["RFBX00000003", 1.234, payment.query_id, None],  # amount_yuan_format
        ["RFBX00000004", 1, 201707000000000000000, None],  # excel_number_id (a number)
        [None, None, None, None],  # blank row
        ["RFBX00000005", 3, payment.query_id, "plain"],  # valid
        ["RFBX00000006", 0, payment.query_id, None],  # amount_not_positive
        [20170700000001, 1, payment.query_id, None],  # excel_number_id (order id as a number)
        ["RFBX00000007", 90, payment.query_id],  # amount_exceeds (short row)
        ["RFBX00000001", 1, payment.query_id, None],  # duplicate_order_id_in_file
        ["RFBX00000008", "1,000.5", payment.query_id, None],  # amount_exceeds (the parser reads 1,000.5)
        ["RFBX00000009", True, payment.query_id, None],  # amount_format
    ]

    batch, snapshot = _both_paths(operator_a, _xlsx(rows))

    assert (batch.status, batch.valid_lines, batch.valid_amount) == ("validated", 3, 1250 + 1 + 300)
    assert _errors(snapshot) == [
        (4, "amount_yuan_format", "txnAmt"),
        (5, "excel_number_id", "origQryId"),
        (8, "amount_not_positive", "txnAmt"),
        (9, "excel_number_id", "orderId"),
        (10, "amount_exceeds", "txnAmt"),
        (11, "duplicate_order_id_in_file", "orderId"),
        (12, "amount_exceeds", "txnAmt"),
        (13, "amount_format", "txnAmt"),
    ]


def test_many_lines_over_one_payment_are_allocated_in_file_order(operator_a, pay):
    merchant = operator_a.organisation
    payments = [pay(merchant, 1000) for _ in range(3)]
    rows = []
    for i in range(30):
        payment = payments[i % 3]
        amount = (i * 37) % 300 + 1
        rows.append(f"RFBA{i:08d}|{amount}|{payment.query_id}|x")

    batch, snapshot = _both_paths(operator_a, _text(_header(rows, "orderId|txnAmt|origQryId|reason")))

    assert 0 < batch.valid_lines < 30
    valid = [(n, chunk) for n, status, *_r, chunk in snapshot[1] if status == "valid"]
    assert all(chunk == n // 3 for n, chunk in valid)  # chunks of 3 line numbers
    assert batch.chunk_count == max(n for n, _chunk in valid) // 3 + 1


@pytest.mark.parametrize(
    ("lines", "code"),
    [
        (["hello", "orderId|txnAmt|origQryId"], "header_invalid"),
        (["5.0.0|100|1||", "orderId|amount|origQryId", "RFBF00000001|100|1"], "unknown_column"),
        (["5.0.0|999|1||", "orderId|txnAmt|origQryId", "RFBF00000001|100|1"], "totals_mismatch"),
        (["5.0.0|100|2||", "orderId|txnAmt|origQryId", "RFBF00000001|100|1"], "totals_mismatch"),
        (["5.0.0|0|0||", "orderId|txnAmt|origQryId", "", "  "], "no_lines"),
    ],
)
def test_file_level_problems_on_both_paths(operator_a, lines, code):
    batch, snapshot = _both_paths(operator_a, _text(lines))

    assert (batch.status, batch.error_code) == ("invalid", code)
    assert snapshot[1] == [] and snapshot[2] == []


def test_too_many_lines(operator_a, settings):
    rows = [f"RFBT{i:08d}|1|NOSUCHQUERYID0000001|x" for i in range(5)]
    kind = get_kind("refund")
    with mock.patch.dict("portal.batches.registry._KINDS", {"refund": dataclasses.replace(kind, max_lines=4)}):
        batch = _validate(operator_a, _text(_header(rows, "orderId|txnAmt|origQryId|reason")), fast=True)

    assert (batch.status, batch.error_code, batch.error_params) == ("invalid", "too_many_lines", {"limit": 4})
    assert not BatchLine.objects.filter(batch=batch).exists()


def test_a_failed_write_leaves_nothing_and_the_retry_validates(operator_a, pay):
    payment = pay(operator_a.organisation, 10000)
    rows = [f"RFBW{i:08d}|100|{payment.query_id}|x" for i in range(6)]
    batch = batch_upload(
        actor=operator_a, kind="refund", uploaded_file=_text(_header(rows, "orderId|txnAmt|origQryId|reason"))()
    )
    real = ingest._write_bulk

    def write_then_fail(*args, **kwargs):
        real(*args, **kwargs)
        assert BatchLine.objects.filter(batch=batch).count() == 6  # written, not yet committed
        raise DatabaseError("connection lost")

    with mock.patch.object(ingest, "_write_bulk", write_then_fail), pytest.raises(DatabaseError):
        batch_validate(batch_id=batch.pk)

    _assert_nothing_written(batch)

    assert batch_validate(batch_id=batch.pk) == "validated"  # the task's retry takes over
    batch.refresh_from_db()
    assert (batch.status, batch.valid_lines, batch.valid_amount) == ("validated", 6, 600)
    assert BatchOrderId.objects.filter(batch=batch).count() == 6
    assert [e["valid_lines"] for e in _validated_events(batch)] == [6]


@pytest.mark.parametrize("failing", ["first", "second"])
def test_a_split_write_that_fails_in_either_half_leaves_nothing(committed, operator_a, pay, failing):
    """Either connection failing rolls both halves back: no line, no order id held, no staging schema; the
    batch stays ``validating`` and the task's retry validates it."""
    payment = pay(operator_a.organisation, 10000)
    rows = [f"RFBH{i:08d}|100|{payment.query_id}|x" for i in range(8)]
    batch = batch_upload(
        actor=operator_a, kind="refund", uploaded_file=_text(_header(rows, "orderId|txnAmt|origQryId|reason"))()
    )
    real = ingest._insert_bulk
    seen = []

    def insert_then_fail(cursor, select_sql, args):
        answer = real(cursor, select_sql, args)
        seen.append(args["_from"])
        if (args["_from"] == 3) == (failing == "first"):
            if failing == "first":  # the second half is in (not committed) before the first one fails
                while len(seen) < 2:
                    time.sleep(0.01)
            raise DatabaseError("connection lost")
        return answer

    with mock.patch.object(ingest, "_insert_bulk", insert_then_fail), pytest.raises(DatabaseError):
        batch_validate(batch_id=batch.pk)

    assert sorted(seen) == [3, 7]
    _assert_nothing_written(batch)

    assert batch_validate(batch_id=batch.pk) == "validated"
    batch.refresh_from_db()
    assert (batch.status, batch.valid_lines, batch.valid_amount, batch.chunk_count) == ("validated", 8, 800, 4)
    assert BatchOrderId.objects.filter(batch=batch).count() == 8


def test_an_order_id_taken_during_a_split_write_is_refused(committed, operator_a, pay):
    """Another batch takes an order id of the second half after the checks: that line becomes
    ``duplicate_order_id``; the other lines of both halves stay valid in their chunks."""
    payment = pay(operator_a.organisation, 10000)
    rows = [f"RFBT{i:08d}|100|{payment.query_id}|x" for i in range(8)]
    other = _validate(operator_a, _text(["5.0.0|0|0||", "orderId|txnAmt|origQryId"], name="other.txt"), fast=True)
    batch = batch_upload(
        actor=operator_a, kind="refund", uploaded_file=_text(_header(rows, "orderId|txnAmt|origQryId|reason"))()
    )
    kind = get_kind("refund")

    def lines_then_race(batch_, ctx):
        answer = kind.bulk.lines(batch_, ctx)
        BatchOrderId.objects.create(
            family="refund", merchant=operator_a.organisation, order_id="RFBT00000005", batch=other, line_no=9
        )
        return answer

    bulk = dataclasses.replace(kind.bulk, lines=lines_then_race)
    halves = mock.patch.object(refund_bulk, "_check_in_halves", wraps=refund_bulk._check_in_halves)
    with (
        mock.patch.dict("portal.batches.registry._KINDS", {"refund": dataclasses.replace(kind, bulk=bulk)}),
        halves as checked_in_halves,
    ):
        assert batch_validate(batch_id=batch.pk) == "validated"
    assert checked_in_halves.call_count == 1  # the checks too, by two connections

    batch.refresh_from_db()
    assert (batch.valid_lines, batch.invalid_lines, batch.valid_amount, batch.chunk_count) == (7, 1, 700, 4)
    line = BatchLine.objects.get(batch=batch, line_no=8)
    assert (line.status, line.error_code, line.error_params) == (
        "invalid",
        "duplicate_order_id",
        {"order_id": "RFBT00000005", "batch_id": other.pk, "line_no": 9},
    )
    valid = BatchLine.objects.filter(batch=batch, status="valid").values_list("line_no", "chunk_no")
    assert list(valid) == [(3, 1), (4, 1), (5, 1), (6, 2), (7, 2), (9, 3), (10, 3)]  # chunks of 3 line numbers
    assert _staging_schemas() == []


def test_staging_left_by_a_killed_run_is_swept_once_the_batch_moved_on(operator_a, settings):
    """A worker killed while validating leaves its unlogged staging schema: the hourly sweep drops it once
    the batch is no longer ``validating`` (a run may still be going on before that)."""
    from refunds import tasks
    from refunds.bulk import sweep_staging

    payment_file = _text(_header(["RFBK00000001|100|NOSUCHQUERYID00000001|x"], "orderId|txnAmt|origQryId|reason"))
    batch = batch_upload(actor=operator_a, kind="refund", uploaded_file=payment_file())
    Batch.objects.filter(pk=batch.pk).update(status="validating")
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE SCHEMA refund_bulk_{batch.pk}_deadbeef0001")
        cursor.execute(f"CREATE UNLOGGED TABLE refund_bulk_{batch.pk}_deadbeef0001.refund_bulk_stage (c0 text)")
        cursor.execute(f"CREATE SCHEMA refund_bulk_{batch.pk + 1000}_deadbeef0002")  # a batch that is gone

    assert sweep_staging() == 1
    assert _staging_schemas() == [f"refund_bulk_{batch.pk}_deadbeef0001"]  # its batch still validates

    Batch.objects.filter(pk=batch.pk).update(status="cancelled")
    assert tasks.sweep_staging() == 1  # the hourly job
    assert _staging_schemas() == []
    assert settings.CELERY_BEAT_SCHEDULE["refunds-sweep-staging"] == {
        "task": "refunds.sweep_staging",
        "schedule": 3600.0,
    }


def _assert_nothing_written(batch) -> None:
    """The batch is left ``validating`` for the task's retry, with no line, order id, staging or event."""
    batch.refresh_from_db()
    assert (batch.status, batch.total_lines, batch.valid_lines) == ("validating", 0, 0)
    assert not BatchLine.objects.filter(batch=batch).exists()
    assert not BatchOrderId.objects.filter(batch=batch).exists()
    assert _staging_schemas() == []
    assert not _validated_events(batch)


def _staging_schemas() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT nspname FROM pg_namespace WHERE starts_with(nspname, 'refund_bulk_')")
        return [row[0] for row in cursor.fetchall()]


def _validated_events(batch) -> list[dict]:
    from portal.audit.models import AuditEvent

    return list(
        AuditEvent.objects.filter(action="batch.validated", object_id=str(batch.pk)).values_list("details", flat=True)
    )


def test_an_order_id_taken_by_another_batch_during_the_write_is_refused(operator_a, pay):
    payment = pay(operator_a.organisation, 10000)
    rows = [f"RFBR{i:08d}|100|{payment.query_id}|x" for i in range(4)]
    other = _validate(operator_a, _text(["5.0.0|0|0||", "orderId|txnAmt|origQryId"], name="other.txt"), fast=True)
    batch = batch_upload(
        actor=operator_a, kind="refund", uploaded_file=_text(_header(rows, "orderId|txnAmt|origQryId|reason"))()
    )
    real_lines = get_kind("refund").bulk.lines

    def lines_then_race(batch_, ctx):
        answer = real_lines(batch_, ctx)
        # another batch takes line 4's order id after the checks read the holders
        BatchOrderId.objects.create(
            family="refund", merchant=operator_a.organisation, order_id="RFBR00000001", batch=other, line_no=9
        )
        return answer

    kind = get_kind("refund")
    bulk = dataclasses.replace(kind.bulk, lines=lines_then_race)
    with mock.patch.dict("portal.batches.registry._KINDS", {"refund": dataclasses.replace(kind, bulk=bulk)}):
        batch_validate(batch_id=batch.pk)

    batch.refresh_from_db()
    assert (batch.status, batch.valid_lines, batch.invalid_lines, batch.valid_amount) == ("validated", 3, 1, 300)
    line = BatchLine.objects.get(batch=batch, line_no=4)
    assert (line.status, line.error_code, line.chunk_no) == ("invalid", "duplicate_order_id", None)
    assert line.error_params == {"order_id": "RFBR00000001", "batch_id": other.pk, "line_no": 9}
    assert list(BatchLine.objects.filter(batch=batch, status="valid").values_list("line_no", "chunk_no")) == [
        (3, 1),
        (5, 1),
        (6, 2),  # chunks of 3 line numbers: line 4's losing its order id leaves the others where they were
    ]


def test_a_run_taken_over_while_staging_writes_nothing(operator_a, pay):
    payment = pay(operator_a.organisation, 10000)
    rows = [f"RFBS{i:08d}|100|{payment.query_id}|x" for i in range(3)]
    batch = batch_upload(
        actor=operator_a, kind="refund", uploaded_file=_text(_header(rows, "orderId|txnAmt|origQryId|reason"))()
    )
    kind = get_kind("refund")

    def stage_then_taken_over(batch_, stream, ctx, progress):
        kind.bulk.stage(batch_, stream, ctx, progress)
        Batch.objects.filter(pk=batch_.pk).update(work_token="another-run")

    bulk = dataclasses.replace(kind.bulk, stage=stage_then_taken_over)
    with mock.patch.dict("portal.batches.registry._KINDS", {"refund": dataclasses.replace(kind, bulk=bulk)}):
        assert batch_validate(batch_id=batch.pk) is None

    batch.refresh_from_db()
    assert (batch.status, batch.work_token, batch.total_lines) == ("validating", "another-run", 0)
    assert not BatchLine.objects.filter(batch=batch).exists()
    assert not BatchOrderId.objects.filter(batch=batch).exists()


def test_an_order_id_repeated_blocks_apart_on_both_paths(operator_a, pay, settings):
    settings.BATCH_VALIDATE_CHUNK = 500
    payments = [pay(operator_a.organisation, 100000) for _ in range(10)]
    rows = [f"RFBB{i:08d}|10|{payments[i % 10].query_id}|a plain reason for the line" for i in range(3000)]
    rows[2990] = f"RFBB{5:08d}|10|{payments[0].query_id}|x"  # line 2993 repeats line 8's order id, 130 kB later

    batch, snapshot = _both_paths(operator_a, _text(_header(rows, "orderId|txnAmt|origQryId|reason"), eol="\n"))

    assert (batch.valid_lines, batch.invalid_lines) == (2999, 1)
    assert _errors(snapshot) == [(2993, "duplicate_order_id_in_file", "orderId")]
    assert snapshot[1][2990][4] == {"order_id": "RFBB00000005", "line_no": 8}
