"""The two real upstream files (fixtures/upstream/README.md) parse with exactly their published totals."""

import zipfile
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from payments.gateway.acp.reconfiles import (
    LineError,
    Summary,
    Totals,
    ZMRecord,
    build_rd,
    parse_rd,
    parse_zm,
    read_archive,
    summarise,
    totals,
    write_rd,
    write_zm,
)

UPSTREAM = Path(__file__).resolve().parents[3].parent / "shared" / "fixtures" / "upstream"
SAMPLE_ZIP = UPSTREAM / "802310048993424_20150905.zip"
PRODUCTION_ZM = UPSTREAM / "INN17071888ZM_898319849000018"
BJ = ZoneInfo("Asia/Shanghai")

pytestmark = pytest.mark.skipif(not SAMPLE_ZIP.exists(), reason="shared upstream fixtures not available")


@pytest.fixture(scope="module")
def sample():
    return read_archive(SAMPLE_ZIP.read_bytes())


@pytest.fixture(scope="module")
def production():
    return PRODUCTION_ZM.read_bytes()


def test_sample_zip_members(sample):
    # given the network's official sample zip / when it is read
    # then it holds the ZM and RD members named in the README, and no ZME
    assert sample.zm.name == "INN15090588ZM_802310048993424"
    assert sample.rd.name == "RD201015090501_802310048993424"
    assert sample.zme is None
    assert sample.ignored == ()
    assert (sample.zm.settle_date, sample.zm.mer_id) == (date(2015, 9, 5), "802310048993424")
    assert (sample.rd.settle_date, sample.rd.mer_id) == (date(2015, 9, 5), "802310048993424")


def test_sample_detail_totals_are_the_published_ones(sample):
    parsed = list(parse_zm(sample.zm.data))

    assert [item for item in parsed if isinstance(item, LineError)] == []
    # 8 records; amount 1,322,700 fen; fee D 7,936; settlement C 1,314,764
    assert totals(parsed) == Totals(count=8, amount=1_322_700, fee=-7_936, settlement=1_314_764)


def test_sample_first_record_fields(sample):
    first = next(parse_zm(sample.zm.data))

    assert first == ZMRecord(
        txn_code="S56",
        acquirer_code="88022900",
        sender_code="00049993",
        trace_no="190624",
        trans_time="0906112203",
        pan="622609******0048",
        amount=476800,
        mcc="4899",
        terminal_type="07",
        query_id="201509061122031906248",
        old_pay_method="01",
        order_id="10078087",
        pay_card_type="01",
        merchant_fee=-2861,
        settle_amount=473939,
        pay_method="0001",
        txn_type="01",
        biz_type="000201",
        mer_id="802310048993424",
        sub_mer_id="000000000000000",
        sub_mer_split_amount=0,
        net_amount=473939,
        term_id="01080209",
        medium="7",
    )
    assert first.transmitted_at(date(2015, 9, 5)) == datetime(2015, 9, 6, 11, 22, 3, tzinfo=BJ)


def test_sample_rd_report_agrees_with_the_detail(sample):
    report = parse_rd(sample.rd.data)
    detail = totals(parse_zm(sample.zm.data))

    assert (report.mer_id, report.acquirer_code, report.merchant_name) == ("802310048993424", "88022900", "淘在路上")
    assert (report.settle_date, report.generated_date, report.currency) == (
        date(2015, 9, 5),
        date(2015, 9, 6),
        "人民币",
    )
    assert [row.label for row in report.by_type] == ["自助消费"]
    total = report.type_total
    assert (total.count, total.amount_credit, total.fee_debit, total.net_credit) == (8, 1_322_700, 7_936, 1_314_764)
    assert (total.count, total.amount_credit, -total.fee_debit, total.net_credit) == (
        detail.count,
        detail.amount,
        detail.fee,
        detail.settlement,
    )
    assert [row.label for row in report.by_card] == ["借记卡", "贷记卡", "准贷记卡", "其他卡"]
    assert report.card_total == total


def test_our_rd_writer_reproduces_the_official_report_byte_for_byte(sample):
    report = parse_rd(sample.rd.data)
    built = build_rd(
        parse_zm(sample.zm.data),
        mer_id="802310048993424",
        acquirer_code="88022900",
        merchant_name="淘在路上",
        settle_date=date(2015, 9, 5),
        generated_date=date(2015, 9, 6),
    )

    assert built == report
    assert write_rd(built) == sample.rd.data


def test_sample_detail_rewrites_to_the_same_bytes(sample):
    records = list(parse_zm(sample.zm.data))

    assert sample.zm.data.count(b"\r\n") == 8
    assert write_zm(records) == sample.zm.data


def test_production_file_totals_are_the_published_ones(production):
    parsed = list(parse_zm(production))

    assert [item for item in parsed if isinstance(item, LineError)] == []
    assert totals(parsed) == Totals(count=1207, amount=4_727_546_394, fee=-28_968, settlement=4_727_517_426)
    assert {(r.txn_code, r.txn_type) for r in parsed} == {("S22", "01")}
    assert {len(line) for line in production.split(b"\n") if line} == {607}


def test_production_file_window_and_lf_rewrite(production):
    records = list(parse_zm(production))
    times = sorted(r.trans_time for r in records)

    assert (times[0], times[-1]) == ("0717230201", "0718230156")
    settle = date(2017, 7, 18)
    assert min(r.transmitted_at(settle) for r in records) == datetime(2017, 7, 17, 23, 2, 1, tzinfo=BJ)
    assert max(r.transmitted_at(settle) for r in records) == datetime(2017, 7, 18, 23, 1, 56, tzinfo=BJ)
    assert b"\r" not in production
    assert write_zm(records, newline=b"\n") == production


def test_production_file_keeps_gbk_merchant_text(production):
    texts = {r.mer_reserved for r in parse_zm(production)}

    assert {"test", "deposit", "账户充值", "银行卡支付"} <= texts


def test_summarise_the_sample_zip():
    summary = summarise(SAMPLE_ZIP)

    assert summary == Summary(count=8, amount=1_322_700, fee=-7_936, settlement=1_314_764)
    assert summary.line() == "records=8 amount=1322700 fee=D7936 settlement=C1314764"


def test_summarise_the_production_file_by_path_and_by_bytes(production):
    expected = Summary(count=1207, amount=4_727_546_394, fee=-28_968, settlement=4_727_517_426)

    assert summarise(PRODUCTION_ZM) == expected
    assert summarise(str(PRODUCTION_ZM)) == expected
    assert summarise(production) == expected
    assert expected.line() == "records=1207 amount=4727546394 fee=D28968 settlement=C4727517426"


def test_sample_zip_is_a_real_zip_with_crlf_members():
    # a guard that the fixture is what the README says (so the tests above test the real thing)
    with zipfile.ZipFile(SAMPLE_ZIP) as archive:
        assert archive.namelist() == ["INN15090588ZM_802310048993424", "RD201015090501_802310048993424"]
