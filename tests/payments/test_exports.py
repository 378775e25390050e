import csv
import io

import pytest
import time_machine
from openpyxl import load_workbook

from payments import exports
from portal.audit.models import AuditEvent

from .conftest import PAN_B, bj

pytestmark = pytest.mark.django_db

NOW = bj(2026, 3, 10, 15, 0, 0)
URL = "/transactions/export/"


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def ledger(merchant_a, merchant_b, make_txn):
    make_txn(merchant_a, order_id="PAID0001", amount=12345, txn_time=bj(2026, 3, 9, 10, 0))
    make_txn(merchant_a, order_id="PAID0002", amount=1, pan=PAN_B, txn_time=bj(2026, 3, 9, 11, 0))
    make_txn(merchant_a, order_id="FAIL0001", amount=500, status="failed", txn_time=bj(2026, 3, 9, 12, 0))
    make_txn(merchant_a, order_id="=HYPERLINK1", amount=700, req_reserved="@SUM(A1)", txn_time=bj(2026, 3, 9, 13, 0))
    make_txn(merchant_a, order_id="OLD00001", amount=900, txn_time=bj(2026, 2, 1, 13, 0))
    make_txn(merchant_b, order_id="OTHER001", amount=800, txn_time=bj(2026, 3, 9, 13, 0))


def _csv(response, encoding="utf-8-sig"):
    body = b"".join(response.streaming_content).decode(encoding)
    return list(csv.reader(io.StringIO(body)))


def test_csv_contains_exactly_the_filtered_set(client_for, operator_a, ledger):
    response = client_for(operator_a).get(URL, {"file_format": "csv", "status": "success", "scope": "history"})
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    rows = _csv(response)
    assert rows[0][:3] == ["Transaction time (Beijing)", "Settlement date", "Merchant number"]
    by_order = {r[3]: r for r in rows[1:]}
    assert set(by_order) == {"PAID0001", "PAID0002", "'=HYPERLINK1"}
    assert by_order["PAID0001"][7] == "123.45"
    assert by_order["PAID0002"][7] == "0.01"
    assert by_order["PAID0001"][10] == "622202*********0128"
    assert by_order["'=HYPERLINK1"][16] == "'@SUM(A1)"
    assert by_order["PAID0001"][0] == "2026-03-09 10:00:00"


def test_csv_starts_with_a_bom_for_utf8(client_for, operator_a, ledger):
    response = client_for(operator_a).get(URL, {"file_format": "csv"})
    assert b"".join(response.streaming_content).startswith(b"\xef\xbb\xbf")


def test_gbk_csv_with_chinese_headers(client_for, operator_a, ledger):
    client = client_for(operator_a)
    response = client.get(URL, {"file_format": "csv", "encoding": "gbk"}, HTTP_ACCEPT_LANGUAGE="zh-hans")
    assert response["Content-Type"] == "text/csv; charset=GBK"
    raw = b"".join(response.streaming_content)
    assert not raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(raw.decode("gbk"))))
    assert len(rows) == 5


def test_xlsx_reads_back_with_numbers(client_for, operator_a, ledger):
    response = client_for(operator_a).get(URL, {"file_format": "xlsx", "order_id": "PAID0001"})
    assert response.status_code == 200
    wb = load_workbook(io.BytesIO(b"".join(response.streaming_content)), read_only=True)
    rows = list(wb.active.iter_rows(values_only=True))
    assert len(rows) == 2
    assert rows[1][3] == "PAID0001"
    assert rows[1][7] == pytest.approx(123.45)
    assert rows[1][10] == "622202*********0128"


def test_full_card_filter_in_the_export_uses_the_hash(client_for, operator_a, ledger):
    client = client_for(operator_a)
    location = client.post("/transactions/history/", {"card": PAN_B})["Location"]
    query = location.split("?", 1)[1]
    response = client.get(f"{URL}?{query}&file_format=csv")
    rows = _csv(response)
    assert [r[3] for r in rows[1:]] == ["PAID0002"]
    event = AuditEvent.objects.get(action="transaction.export")
    assert PAN_B not in str(event.details)
    assert event.details["filter"]["card"] == "625807*********3337"


def test_download_is_audited_with_rows_and_filter(client_for, operator_a, ledger):
    client_for(operator_a).get(URL, {"file_format": "csv", "status": "success", "scope": "history"})
    event = AuditEvent.objects.get(action="transaction.export")
    assert event.actor == operator_a
    assert event.details["rows"] == 3
    assert event.details["format"] == "csv"
    assert event.details["filter"]["status"] == "success"
    assert event.details["filter"]["date_from"] == "2026-03-04"


def test_zero_rows_gives_a_message_and_no_file(client_for, operator_a, ledger):
    response = client_for(operator_a).get(URL, {"file_format": "csv", "order_id": "NOSUCHORDER"}, follow=True)
    assert response["Content-Type"].startswith("text/html")
    assert "nothing to download" in response.content.decode()
    assert not AuditEvent.objects.filter(action="transaction.export").exists()


def test_more_rows_than_even_a_background_job_holds_asks_to_narrow(
    client_for, operator_a, ledger, monkeypatch, settings
):
    settings.TRANSACTIONS_EXPORT_STREAM_LIMIT = 2
    monkeypatch.setattr(exports, "JOB_MAX_ROWS", {"csv": 3, "xlsx": 3})
    response = client_for(operator_a).get(URL, {"file_format": "csv"}, follow=True)
    assert "Narrow the search" in response.content.decode()
    assert not AuditEvent.objects.filter(action__startswith="transaction.export").exists()


def test_invalid_filter_is_not_exported(client_for, operator_a, ledger):
    response = client_for(operator_a).get(
        URL, {"file_format": "csv", "date_from": "2024-01-01", "date_to": "2026-01-01"}
    )
    assert response.status_code == 302
    assert not AuditEvent.objects.filter(action="transaction.export").exists()


def test_today_scope_exports_the_settlement_day(client_for, operator_a, merchant_a, make_txn):
    make_txn(merchant_a, order_id="TODAY001", txn_time=bj(2026, 3, 10, 9, 0))
    make_txn(merchant_a, order_id="YEST0001", txn_time=bj(2026, 3, 9, 9, 0))
    rows = _csv(client_for(operator_a).get(URL, {"file_format": "csv", "scope": "today"}))
    assert [r[3] for r in rows[1:]] == ["TODAY001"]


def test_acquirer_export_covers_only_its_merchants(client_for, acquirer_reviewer, ledger):
    rows = _csv(client_for(acquirer_reviewer).get(URL, {"file_format": "csv"}))
    assert "OTHER001" not in {r[3] for r in rows[1:]}
    assert len(rows) == 5


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("=1+1", "'=1+1"),
        ("+86", "'+86"),
        ("-5", "'-5"),
        ("@x", "'@x"),
        ("\tx", "'\tx"),
        ("\x01x", "'\x01x"),
        ("safe", "safe"),
        ("", ""),
    ],
)
def test_neutralise(value, expected):
    assert exports.neutralise(value) == expected
