"""Parser robustness (security.md F8) and exact parsing of both formats; pure, no database."""

from __future__ import annotations

import io

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openpyxl import Workbook

from portal.batches.registry import FileError, LineError, ParsedLine
from refunds.formats.columns import FieldError, parse_yuan
from refunds.formats.parse import parse

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
QID = "202603101200000000001"


def items(data: bytes, fmt: str = "text"):
    return list(parse(io.BytesIO(data), fmt))


def xlsx(rows) -> bytes:
    wb = Workbook()
    ws = wb.active
    for row in rows:
        ws.append(list(row))
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def _well_formed(result) -> None:
    assert all(isinstance(i, ParsedLine | LineError | FileError) for i in result)
    for item in result:
        if isinstance(item, ParsedLine):
            assert item.amount > 0 and 8 <= len(item.order_id) <= 32 and item.order_id.isalnum()


@FUZZ
@given(st.binary(max_size=4096))
def test_random_bytes_never_crash(data):
    _well_formed(items(data))


@FUZZ
@given(st.binary(max_size=2048))
def test_random_bytes_as_xlsx_fail_cleanly(data):
    result = items(data, "xlsx")
    assert result and all(isinstance(i, FileError) for i in result)


cell = st.text(alphabet=st.characters(blacklist_characters="|\r\n", blacklist_categories=("Cs",)), max_size=40)


@FUZZ
@given(
    rows=st.lists(st.lists(cell, min_size=0, max_size=7), max_size=20),
    encoding=st.sampled_from(["utf-8", "utf-8-sig", "gbk"]),
    eol=st.sampled_from(["\r\n", "\n", "\r"]),
)
def test_ragged_rows_in_both_encodings(rows, encoding, eol):
    lines = ["5.0.0|0|0||", "orderId|txnAmt|origQryId|reason", *("|".join(r) for r in rows)]
    try:
        data = eol.join(lines).encode(encoding)
    except UnicodeEncodeError:
        return
    result = items(data)
    _well_formed(result)
    numbered = [i.line_no for i in result if not isinstance(i, FileError)]
    assert numbered == sorted(numbered)


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gbk"])
@pytest.mark.parametrize("eol", ["\r\n", "\n"])
def test_exact_parse_in_each_encoding(encoding, eol):
    data = eol.join(
        [
            "5.0.0|3550|2||",
            "orderId|txnAmt|origQryId|reason",
            f"RF0000000001|1000|{QID}|客户退货",
            f"RF0000000002|2550|{QID}|",
        ]
    ).encode(encoding)

    result = items(data)

    assert [(i.line_no, i.order_id, i.amount, i.data.get("reason")) for i in result] == [
        (3, "RF0000000001", 1000, "客户退货"),
        (4, "RF0000000002", 2550, None),
    ]


def test_huge_field_is_a_line_error_not_a_crash():
    data = (
        b"5.0.0|100|2||\r\norderId|txnAmt|origQryId|reason\r\nRF0000000001|100|" + QID.encode() + b"|" + b"x" * 200_000
    )
    data += b"\r\nRF0000000002|100|" + QID.encode() + b"|" + b"y" * 300 + b"\r\n"

    result = items(data)

    assert len(result) == 2  # the header totals hold: the unreadable line counts, its amount is unknown
    assert isinstance(result[0], LineError) and result[0].code == "line_unreadable"
    assert isinstance(result[1], LineError) and (result[1].code, result[1].column) == ("field_too_long", "reason")


@pytest.mark.parametrize(
    ("value", "code"),
    [
        (2.01707e20, "excel_number_id"),
        (201707000000000000000, "excel_number_id"),
        ("2.01707E+20", "excel_number_id"),
        ('=HYPERLINK("x")', "formula"),
    ],
)
def test_excel_numbers_and_formulas_for_ids_are_refused(value, code):
    result = items(xlsx([["orderId", "txnAmt", "origQryId"], ["RF0000000001", 1, value]]), "xlsx")

    assert [(i.line_no, i.code, i.column) for i in result] == [(2, code, "origQryId")]


def test_excel_number_message_tells_how_to_fix():
    from refunds.batch import MESSAGES

    text = str(MESSAGES["excel_number_id"]) % {"value": "2.01707E+20"}
    assert "Format the column as Text" in text and "2.01707E+20" in text


def test_excel_order_id_as_number_is_refused_never_rounded():
    result = items(xlsx([["订单号", "退货金额(元)", "原交易查询流水号"], [12345678901234567890, 1, QID]]), "xlsx")

    assert [(i.code, i.column) for i in result] == [("excel_number_id", "orderId")]


@pytest.mark.parametrize(
    ("value", "fen"),
    [
        (12.5, 1250),
        ("0.01", 1),
        (1, 100),
        ("1,234.56", 123456),
        (0.1 + 0.2, None),
        ("1.234", None),
        ("-1", None),
        (0, None),
    ],
)
def test_yuan_amounts_have_at_most_two_decimals(value, fen):
    if fen is None:
        with pytest.raises(FieldError):
            parse_yuan(value)
    else:
        assert parse_yuan(value) == fen


@FUZZ
@given(st.lists(st.one_of(st.none(), st.integers(), st.floats(allow_nan=True), st.text(max_size=30)), max_size=8))
def test_random_xlsx_rows_never_crash(row):
    try:
        data = xlsx([["orderId", "txnAmt", "origQryId", "reason"], row])
    except Exception:  # openpyxl refuses some values (illegal characters): not our parser's input
        return
    _well_formed(items(data, "xlsx"))


def test_superscript_digits_in_amount_and_header_are_not_numbers():
    data = "\r\n".join(["5.0.0|1|¹||", "orderId|txnAmt|origQryId", f"RF0000000001|¹|{QID}"]).encode()

    result = items(data)

    assert [type(i).__name__ for i in result] == ["FileError"]
    assert result[0].code == "header_invalid"


def test_superscript_digit_amount_is_a_line_error():
    data = "\r\n".join(["5.0.0|0|1||", "orderId|txnAmt|origQryId", f"RF0000000001|¹|{QID}"]).encode()

    result = items(data)

    # the header counts the line; its amount is not a number, so it adds nothing to the total
    assert [(type(i).__name__, i.code, i.column) for i in result] == [("LineError", "amount_format", "txnAmt")]
