"""The CSV detail download on PostgreSQL: rows formatted in SQL and streamed with ``COPY`` give exactly the
bytes of the Python writer (``iter_rows`` + ``csv.writer``), in both languages, both encodings and every sort."""

import csv
import io
import random
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test import Client
from django.utils import translation

from payments import exports
from payments.models import Transaction
from payments.settlement import settlement_date_for
from tests.factories import login_fully

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL (DATABASE_URL=postgres://...)"),
]

# Text that a spreadsheet would run, control characters, CSV quoting, Chinese, and a character GBK lacks.
TRICKY = [
    "",
    "plain",
    '=HYPERLINK("http://x")',
    "+86 10 1234",
    "-1+2",
    "@SUM(A1)",
    "\tTAB",
    "\rCR",
    "\nLF",
    "\x01SOH",
    "\x7fDEL",
    "a,b",
    'say "hi"',
    "two\nlines",
    "two\r\nlines",
    "中文备注",
    "=中文",
    "emoji 😀 €",
    " leading space",
    "'quoted already",
]
SORTS = ["-txn_time", "txn_time", "-amount", "amount"]


@pytest.fixture
def ledger(merchant_a, merchant_b):
    """250 rows of merchant A with every tricky text in every text column, and one row of merchant B."""
    rng = random.Random(20260310)
    base = datetime(2026, 3, 1, 15, 59, 59, 999999, tzinfo=UTC)  # a second before midnight in Beijing
    rows = []
    for i in range(250):
        txn_time = base + timedelta(minutes=37 * i, microseconds=-i)
        amount = rng.choice([1, 5, 10, 99, 100, 12345, 100000000, 987654321012])
        rows.append(
            Transaction(
                merchant=merchant_a,
                acquirer_id=merchant_a.acquirer_id,
                order_id=f"{TRICKY[i % len(TRICKY)]}{i}",
                txn_time=txn_time,
                txn_type=rng.choice(["01", "04", "31", "02", "33"]),
                channel_type=rng.choice(["07", "08"]),
                amount=amount,
                refunded_amount=rng.choice([0, 0, amount, amount // 3]),
                status=rng.choice(["success", "failed", "pending"]),
                resp_code=rng.choice(["00", "", "-1", "=1", "03"]),
                resp_msg=TRICKY[(i * 7) % len(TRICKY)],
                query_id=None if i % 5 == 0 else f"Q{i:020d}",
                trace_no=rng.choice(["", "123456", "-12345"]),
                orig_query_id=rng.choice(["", f"P{i:020d}", "+1"]),
                settle_date=settlement_date_for(txn_time),
                card_masked=rng.choice(["", "622202*********0128", "6222021234"]),
                req_reserved=TRICKY[(i * 11) % len(TRICKY)],
                source="sandbox",
            )
        )
    # Equal times and amounts: the id breaks the ties in the same way on both paths.
    rows[10].txn_time = rows[11].txn_time
    rows[20].amount = rows[21].amount = 777
    rows[20].refunded_amount = rows[21].refunded_amount = 0
    Transaction.objects.bulk_create(rows)
    Transaction.objects.create(
        merchant=merchant_b,
        acquirer_id=merchant_b.acquirer_id,
        order_id="OTHER",
        txn_time=base,
        txn_type="01",
        amount=1,
        status="success",
        settle_date=settlement_date_for(base),
        source="sandbox",
    )
    return Transaction.objects.filter(merchant=merchant_a)


def _file(qs, *, encoding, sort, use_copy) -> bytes:
    chunks = exports._csv_chunks(qs, encoding=encoding, sort=sort, every=37, use_copy=use_copy)
    return b"".join(chunk for chunk in chunks if not isinstance(chunk, int))


@pytest.mark.django_db
@pytest.mark.parametrize("language", ["en", "zh-hans"])
@pytest.mark.parametrize("encoding", ["utf-8", "gbk"])
@pytest.mark.parametrize("sort", SORTS)
def test_copy_path_is_byte_identical_to_the_python_writer(ledger, language, encoding, sort, monkeypatch):
    # Small chunks: some hold a newline inside a field, others not (both ways of writing CRLF).
    monkeypatch.setattr(exports, "COPY_CHUNK_BYTES", 2000)
    with translation.override(language):
        python = _file(ledger, encoding=encoding, sort=sort, use_copy=False)
        copied = _file(ledger, encoding=encoding, sort=sort, use_copy=True)
    assert copied == python
    text = python.decode("utf-8-sig" if encoding == "utf-8" else "gbk")
    lines = list(csv.reader(io.StringIO(text, newline="")))
    assert len(lines) == 251  # the header and the 250 rows of merchant A only
    with translation.override(language):
        assert lines[0] == exports.headers()


@pytest.mark.django_db
def test_copy_path_formats_each_kind_of_cell(ledger):
    txn = ledger.order_by("id").first()
    Transaction.objects.filter(pk=txn.pk).update(
        order_id="=1+1", resp_msg="", req_reserved='a,"b"\nc', amount=100000005, refunded_amount=5, query_id=None
    )
    with translation.override("en"):
        body = _file(ledger.filter(pk=txn.pk), encoding="utf-8", sort="-txn_time", use_copy=True)
    txn.refresh_from_db()
    when = txn.txn_time.astimezone(exports.settlement.business_tz()).strftime("%Y-%m-%d %H:%M:%S")
    assert body.decode("utf-8").split("\r\n", 1)[1] == (
        f"{when},{txn.settle_date.isoformat()},{txn.merchant.code},'=1+1,,"
        f"{dict(exports.TXN_TYPE_LABELS)[txn.txn_type]},{dict(exports.STATUS_LABELS)[txn.status]},"
        f"1000000.05,0.05,156,{txn.card_masked},{dict(exports.CHANNEL_LABELS)[txn.channel_type]},"
        f'{exports.neutralise(txn.resp_code)},,{txn.orig_query_id},{txn.trace_no},"a,""b""\nc"\r\n'
    )


@pytest.mark.django_db
def test_gbk_download_through_the_view_uses_copy_and_matches(ledger, merchant_a, operator_a):
    client = Client()
    login_fully(client, operator_a)
    params = {"file_format": "csv", "encoding": "gbk", "date_from": "2026-03-01", "date_to": "2026-03-31"}
    response = client.get("/transactions/export/", params, HTTP_ACCEPT_LANGUAGE="zh-hans")
    assert response.status_code == 200
    body = b"".join(response.streaming_content)
    with translation.override("zh-hans"):
        expected = _file(ledger, encoding="gbk", sort="-txn_time", use_copy=False)
    assert body == expected
    assert "?" in body.decode("gbk")  # the emoji GBK cannot hold


@pytest.mark.django_db
@pytest.mark.parametrize("file_format", ["csv_utf8", "csv_gbk"])
def test_background_job_file_uses_copy_and_reports_progress_after_it(ledger, file_format, tmp_path, monkeypatch):
    monkeypatch.setattr(exports, "COPY_CHUNK_BYTES", 2000)
    seen = []

    def progress(done):
        # Like the job runner's progress, this writes through the same connection: never during the COPY.
        seen.append((done, Transaction.objects.filter(pk__in=ledger.values("pk")).count()))

    with translation.override("zh-hans"):
        rows = exports.write_file(ledger, tmp_path / "out.csv", file_format=file_format, progress=progress, every=10)
        expected = _file(ledger, encoding="gbk" if file_format == "csv_gbk" else "utf-8", sort="-txn_time",
                         use_copy=False)  # fmt: skip
    assert rows == 250
    assert seen == [(250, 250)]
    assert (tmp_path / "out.csv").read_bytes() == expected
