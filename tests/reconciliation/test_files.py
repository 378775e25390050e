"""Files we produce: the network zip (ZM / ZME / RD) read by the codec and by an independent parser, friendly
files, statements, clearing files; deterministic bytes; regeneration of a missing file."""

import csv
import hashlib
import io
import zipfile
from datetime import date, timedelta

import openpyxl
import pytest
from django.db import transaction
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from payments.gateway.acp.reconfiles import parse_rd, parse_zm, read_archive, totals
from portal.audit.models import AuditEvent
from reconciliation.models import MerchantSettlement, ReconciliationFile
from reconciliation.producers.network import zm_records_for
from reconciliation.services import (
    ReconciliationFileError,
    produce_acquirer_files,
    produce_day_files,
    produce_merchant_files,
    produce_monthly_statements,
    reconciliation_file_ensure,
    settlement_close_day,
)

from .conftest import bj

DAY = date(2026, 3, 10)
AFTER = bj(2026, 3, 10, 23, 30)


def independent_zm_parse(data: bytes) -> list[dict]:
    """A second parser written from formats.md §6.4 alone: slice each 607-byte line by its byte offsets."""

    def signed(raw: bytes) -> int:
        text = raw.decode("ascii")
        if not text.strip():
            return 0
        return -int(text[1:]) if text[0] == "D" else int(text[1:])

    out = []
    for raw in data.split(b"\r\n"):
        if not raw:
            continue
        assert len(raw) == 607
        out.append(
            {
                "txn_code": raw[0:3].decode("ascii"),
                "trace_no": raw[28:34].decode("ascii").strip(),
                "pan": raw[46:65].decode("ascii").strip(),
                "amount": int(raw[66:78]),
                "query_id": raw[87:108].decode("ascii").strip(),
                "order_id": raw[112:144].decode("gbk").strip(),
                "fee": signed(raw[166:179]),
                "settlement": signed(raw[180:193]),
                "txn_type": raw[215:217].decode("ascii"),
                "biz_type": raw[221:227].decode("ascii"),
                "orig_query_id": raw[271:292].decode("ascii").strip(),
                "mer_id": raw[293:308].decode("ascii"),
                "net": signed(raw[374:387]),
            }
        )
    return out


@pytest.fixture
def closed_day(merchant_a, make_txn, rates):
    make_txn(merchant_a, amount=10_000, card_type="01")
    make_txn(merchant_a, amount=250_000, card_type="02", req_reserved="账户充值")
    voided = make_txn(merchant_a, amount=5_000)
    make_txn(merchant_a, txn_type="31", amount=5_000, orig=voided, orig_query_id=voided.query_id)
    older = make_txn(merchant_a, amount=20_000, card_type="02", txn_time=bj(2026, 3, 1, 10))
    make_txn(merchant_a, txn_type="04", amount=3_000, card_type="02", orig=older, orig_query_id=older.query_id)
    settlement_close_day(actor=None, day=DAY, now=AFTER)
    return MerchantSettlement.objects.get(merchant=merchant_a, day=DAY)


def _zip_of(files):
    return next(f for f in files if f.kind == "zip")


def test_merchant_zip_holds_zm_zme_rd_with_totals_of_the_summary(closed_day, merchant_a):
    # when
    files = produce_merchant_files(merchant_a, DAY)

    # then: the zip and its members
    zfile = _zip_of(files)
    assert zfile.name == f"{merchant_a.code}_20260310.zip"
    data = zfile.path.read_bytes()
    archive = read_archive(data)
    assert archive.zm.name == f"INN26031088ZM_{merchant_a.code}"
    assert archive.zme.name == f"INN26031088ZME_{merchant_a.code}" and archive.zme.data == b""
    assert archive.rd.name == f"RD201026031001_{merchant_a.code}"
    lines = archive.zm.data.split(b"\r\n")
    assert lines[-1] == b"" and all(len(line) == 607 for line in lines[:-1]) and len(lines) - 1 == 5
    # the codec's parser
    records = list(parse_zm(archive.zm.data))
    t = totals(records)
    ms = closed_day
    assert (t.count, t.amount, t.fee, t.settlement) == (ms.count, ms.amount, -ms.fee, ms.net)
    # the independent parser
    rows = independent_zm_parse(archive.zm.data)
    assert len(rows) == ms.count
    assert sum(r["amount"] for r in rows) == ms.amount
    assert sum(r["fee"] for r in rows) == -ms.fee
    assert sum(r["settlement"] for r in rows) == ms.net == sum(r["net"] for r in rows)
    assert {r["mer_id"] for r in rows} == {merchant_a.code}
    assert [r["txn_code"] for r in rows].count("S31") == 1 and [r["txn_code"] for r in rows].count("S30") == 1
    assert all("*" in r["pan"] for r in rows)
    void = next(r for r in rows if r["txn_type"] == "31")
    assert void["orig_query_id"] and void["settlement"] == -5_000 + 19
    # the RD summary agrees
    report = parse_rd(archive.rd.data)
    assert report.type_total.count == ms.count
    assert report.type_total.net_credit - report.type_total.net_debit == ms.net
    assert report.generated_date == DAY + timedelta(days=1)


def test_files_are_recorded_with_size_and_sha256(closed_day, merchant_a):
    files = produce_merchant_files(merchant_a, DAY)
    assert sorted((f.kind, f.language) for f in files) == sorted(
        [("zip", "")] + [(k, lang) for k in ("detail_csv", "detail_xlsx") for lang in ("zh-hans", "en")]
    )
    for f in files:
        data = f.path.read_bytes()
        assert f.size == len(data) and f.sha256 == hashlib.sha256(data).hexdigest()
        assert "reconciliation" in f.path.parts
    assert AuditEvent.objects.filter(action="reconciliation.files_generate").count() == 1


def test_generation_is_deterministic_and_a_missing_file_comes_back_identical(closed_day, merchant_a):
    # given
    first = {(f.kind, f.language): f.sha256 for f in produce_merchant_files(merchant_a, DAY)}

    # when: produced again
    second = {(f.kind, f.language): f.sha256 for f in produce_merchant_files(merchant_a, DAY)}

    # then
    assert first == second
    assert ReconciliationFile.objects.count() == 5
    # when: every file is deleted from disk and asked for again
    for row in ReconciliationFile.objects.all():
        original = row.path.read_bytes()
        row.path.unlink()
        path = reconciliation_file_ensure(row)
        assert path.read_bytes() == original
        assert hashlib.sha256(original).hexdigest() == first[(row.kind, row.language)]


def test_friendly_csv_in_the_users_language_with_time_zone_note(closed_day, merchant_a):
    files = {(f.kind, f.language): f for f in produce_merchant_files(merchant_a, DAY)}
    text = files[("detail_csv", "en")].path.read_bytes().decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    assert "Asia/Shanghai" in rows[1][0] and "23:00" in rows[1][0]
    assert rows[2][0] == "Settlement day" and rows[2][9] == "Amount (yuan)"
    assert len(rows) == 3 + closed_day.count
    assert sum(float(r[11]) for r in rows[3:]) == pytest.approx(closed_day.net / 100)
    book = openpyxl.load_workbook(files[("detail_xlsx", "en")].path)
    sheet = book.active
    assert "Asia/Shanghai" in sheet["A2"].value
    assert sheet.max_row == 3 + closed_day.count
    assert book.properties.created.date() == DAY


def test_b2b_and_ebpp_files_only_when_the_merchant_has_them(merchant_a, make_txn, rates):
    make_txn(merchant_a, amount=1_000)
    make_txn(merchant_a, amount=2_000, biz_type="000202")
    make_txn(merchant_a, amount=3_000, biz_type="000601")
    settlement_close_day(actor=None, day=DAY, now=AFTER)

    files = {(f.kind, f.language): f for f in produce_merchant_files(merchant_a, DAY)}

    assert {k for k, _lang in files} == {
        "zip",
        "detail_csv",
        "detail_xlsx",
        "b2b_csv",
        "b2b_xlsx",
        "ebpp_csv",
        "ebpp_xlsx",
    }
    b2b = list(csv.reader(io.StringIO(files[("b2b_csv", "en")].path.read_bytes().decode("utf-8-sig"))))
    assert [r[8] for r in b2b[3:]] == ["000202"] and b2b[3][9] == "20.00"


def test_files_of_an_unclosed_day_are_refused(merchant_a):
    with pytest.raises(ReconciliationFileError, match="not closed"):
        produce_merchant_files(merchant_a, DAY)


def test_acquirer_clearing_file_has_one_line_per_merchant(closed_day, merchant_a, acquirer, make_txn):
    files = {(f.kind, f.language): f for f in produce_acquirer_files(acquirer, DAY)}
    rows = list(csv.reader(io.StringIO(files[("clearing_csv", "zh-hans")].path.read_bytes().decode("utf-8-sig"))))
    assert "Asia/Shanghai" in rows[1][0]
    assert len(rows) == 4 and rows[3][1] == merchant_a.code and rows[3][10] == "%.2f" % (closed_day.net / 100)
    sheet = openpyxl.load_workbook(files[("clearing_xlsx", "en")].path).active
    assert sheet.cell(row=4, column=2).value == merchant_a.code


def test_monthly_statement_xlsx_and_pdf(merchant_a, make_txn, rates):
    # given: a closed February day (opening total) and two closed March days, March closed to its end
    make_txn(merchant_a, amount=50_000, card_type="02", txn_time=bj(2026, 2, 20, 10))
    make_txn(merchant_a, amount=10_000, card_type="02", txn_time=bj(2026, 3, 2, 10))
    make_txn(merchant_a, amount=20_000, card_type="02", txn_time=bj(2026, 3, 31, 10))
    for day in (date(2026, 2, 20), date(2026, 3, 2), date(2026, 3, 31)):
        settlement_close_day(actor=None, day=day, now=bj(2026, 4, 1, 9))

    # when
    files = {(f.kind, f.language): f for f in produce_monthly_statements(merchant_a, date(2026, 3, 15))}

    # then
    assert set(files) == {(k, lang) for k in ("statement_xlsx", "statement_pdf") for lang in ("zh-hans", "en")}
    assert files[("statement_xlsx", "en")].name == f"{merchant_a.code}_202603_statement_en.xlsx"
    sheet = openpyxl.load_workbook(files[("statement_xlsx", "en")].path).active
    values = [tuple(row) for row in sheet.iter_rows(values_only=True)]
    assert values[2][:2] == ("Opening total (yuan)", 497.0)  # 500 - 0.60% fee
    assert [row[0] for row in values[4:6]] == ["2026-03-02", "2026-03-31"]
    assert values[-1][:2] == ("Closing total (yuan)", 497.0 + 99.4 + 198.8)
    pdf = files[("statement_pdf", "zh-hans")].path.read_bytes()
    assert pdf.startswith(b"%PDF-") and b"STSong-Light" in pdf
    again = {(f.kind, f.language): f.sha256 for f in produce_monthly_statements(merchant_a, date(2026, 3, 1))}
    assert again == {key: f.sha256 for key, f in files.items()}


def test_statement_waits_for_the_month_to_close(merchant_a):
    with pytest.raises(ReconciliationFileError, match="last settlement day is closed"):
        produce_monthly_statements(merchant_a, date(2026, 3, 1))


def test_day_files_job_covers_merchants_and_acquirers(closed_day, merchant_a, acquirer):
    assert produce_day_files(DAY) == 5 + 4
    assert set(ReconciliationFile.objects.values_list("organisation__code", flat=True)) == {
        merchant_a.code,
        acquirer.code,
    }


payment = st.tuples(
    st.integers(min_value=1, max_value=99_999_999),
    st.sampled_from(["01", "02", "03", "", "05"]),
    st.booleans(),  # voided the same day
)
refund = st.tuples(st.integers(min_value=1, max_value=9_999_999), st.integers(min_value=0, max_value=9_999_999))


@hsettings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    payments=st.lists(payment, max_size=8),
    refunds=st.lists(refund, max_size=4),
    rule=st.sampled_from(["none", "proportional"]),
)
def test_any_ledger_day_gives_a_zm_file_with_the_totals_of_the_summary(
    merchant_a, make_txn, rates, settings, payments, refunds, rule
):
    settings.RECON_REFUND_FEE_RETURN = rule
    with transaction.atomic():
        for amount, card, voided in payments:
            txn = make_txn(merchant_a, amount=amount, card_type=card)
            if voided:
                make_txn(merchant_a, txn_type="31", amount=amount, card_type=card, orig=txn)
        for amount, extra in refunds:
            older = make_txn(merchant_a, amount=amount + extra, card_type="02", txn_time=bj(2026, 3, 1, 10))
            make_txn(merchant_a, txn_type="04", amount=amount, orig=older)
        settlement_close_day(actor=None, day=DAY, now=AFTER)
        ms = MerchantSettlement.objects.filter(merchant=merchant_a, day=DAY).first()

        data = b""
        if ms is not None:
            zip_path = produce_merchant_files(merchant_a, DAY)[0].path
            data = zipfile.ZipFile(zip_path).read(f"INN26031088ZM_{merchant_a.code}")

        t = totals(zm_records_for(merchant_a, DAY))
        rows = independent_zm_parse(data)
        if ms is None:
            assert t.count == 0 and not payments and not refunds
        else:
            assert (t.count, t.amount, t.fee, t.settlement) == (ms.count, ms.amount, -ms.fee, ms.net)
            assert (len(rows), sum(r["amount"] for r in rows), sum(r["settlement"] for r in rows)) == (
                ms.count,
                ms.amount,
                ms.net,
            )
        transaction.set_rollback(True)
