"""The RD summary report: our writer's layout, built from records, and bad input."""

import dataclasses
from datetime import date

import pytest

from payments.gateway.acp.reconfiles import RDRow, ReportError, ZMRecord, build_rd, parse_rd, write_rd


def records():
    return [
        ZMRecord(txn_code="S22", amount=10_000, merchant_fee=-60, settle_amount=9_940, pay_card_type="01"),
        ZMRecord(txn_code="S22", amount=20_000, merchant_fee=-120, settle_amount=19_880, pay_card_type="02"),
        ZMRecord(txn_code="S30", amount=5_000, merchant_fee=30, settle_amount=-4_970, pay_card_type="02"),
        ZMRecord(txn_code="S99", amount=1, merchant_fee=0, settle_amount=1, pay_card_type="05"),
    ]


def build(items):
    return build_rd(
        items,
        mer_id="898319849000018",
        acquirer_code="48022901",
        merchant_name="测试商户",
        settle_date=date(2026, 3, 10),
        generated_date=date(2026, 3, 11),
    )


def test_rows_by_type_and_card_with_debit_and_credit_sides():
    report = build(records())

    assert report.by_type == (
        RDRow("消费", 2, 0, 30_000, 180, 0, 0, 29_820),
        RDRow("退货", 1, 5_000, 0, 0, 30, 4_970, 0),
        RDRow("S99", 1, 0, 1, 0, 0, 0, 1),
    )
    assert report.type_total == RDRow("总计", 4, 5_000, 30_001, 180, 30, 4_970, 29_821)
    assert report.by_card == (
        RDRow("借记卡", 1, 0, 10_000, 60, 0, 0, 9_940),
        RDRow("贷记卡", 2, 5_000, 20_000, 120, 30, 0, 14_910),
        RDRow("准贷记卡", 0, 0, 0, 0, 0, 0, 0),
        RDRow("其他卡", 1, 0, 1, 0, 0, 0, 1),
    )
    assert report.card_total == RDRow("总计", 4, 5_000, 30_001, 180, 30, 0, 24_851)


def test_written_report_reads_back_and_has_the_official_layout():
    report = build(records())
    data = write_rd(report)
    lines = data.split(b"\r\n")

    assert parse_rd(data) == report
    assert parse_rd(data.replace(b"\r\n", b"\n")) == report
    assert lines[0].decode("gbk").strip() == "中国银联全渠道商户交易汇总表"
    assert lines[2].decode("gbk") == "商户代码:898319849000018" + " " * 40 + "清算币种:人民币"
    row = lines[10].decode("gbk")
    assert row == "消费" + " " * 23 + "2" + "0.00".rjust(16) + "300.00".rjust(16) + "1.80".rjust(16) + "0.00".rjust(
        16
    ) + "0.00".rjust(16) + "298.20".rjust(16)
    assert len(lines[10]) == 124


def test_empty_day_report():
    report = build([])

    assert report.by_type == ()
    assert report.type_total == RDRow("总计")
    assert parse_rd(write_rd(report)) == report


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\xff\xfe",
        "中国银联全渠道商户交易汇总表\r\n".encode("gbk"),
        "商户代码:1\r\n".encode("gbk"),
    ],
)
def test_bad_reports_are_report_errors(data):
    with pytest.raises(ReportError):
        parse_rd(data)


def test_a_report_without_the_card_table_is_refused():
    data = write_rd(build(records()))
    cut = data.index("卡性质".encode("gbk"))

    with pytest.raises(ReportError, match="no complete 卡性质 table"):
        parse_rd(data[:cut])


def test_writer_refuses_a_label_that_breaks_the_columns():
    report = build(records())
    bad = dataclasses.replace(report, by_type=(RDRow("很长的交易类型名称标签"),))

    with pytest.raises(ReportError):
        write_rd(bad)
