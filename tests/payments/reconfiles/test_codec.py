"""ZM / ZME writers and parsers: exact widths, round trips, an independent parser, and bad lines."""

import io
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from payments.gateway.acp.reconfiles import (
    LineError,
    ReconFileError,
    RecordError,
    Totals,
    ZMERecord,
    ZMRecord,
    iter_zm_lines,
    parse_zm,
    parse_zme,
    totals,
    write_zm,
    write_zme,
)

from ._strategies import zm_records, zme_records

BJ = ZoneInfo("Asia/Shanghai")

# --- an independent parser, written from formats.md §6.4 / §6.5 as published (start and end bytes, inclusive) -----
# It deliberately does not import the package's layout table.
PUBLISHED_ZM = {
    "txn_code": (0, 2),
    "trans_time": (35, 44),
    "pan": (46, 64),
    "amount": (66, 77),
    "query_id": (87, 107),
    "order_id": (112, 143),
    "fee": (166, 178),
    "settlement": (180, 192),
    "mer_id": (293, 307),
    "sub_mer_abbr": (327, 358),
    "mer_reserved": (397, 428),
    "reserved": (509, 606),
}
PUBLISHED_ZME = {"amount": (66, 77), "prev_amount": (113, 124), "fee": (126, 138), "settlement": (140, 152)}


def independent_totals(data: bytes, layout: dict, length: int) -> tuple[int, int, int, int]:
    """Count, amount, fee and settlement (signed, D negative) by plain slicing of the bytes."""

    def x_n12(raw: bytes) -> int:
        text = raw.decode("ascii")
        if not text.strip():
            return 0
        return -int(text[1:]) if text[0] == "D" else int(text[1:])

    count = amount = fee = settlement = 0
    for line in data.splitlines():
        assert len(line) == length
        count += 1
        start, end = layout["amount"]
        amount += int(line[start : end + 1])
        start, end = layout["fee"]
        fee += x_n12(line[start : end + 1])
        start, end = layout["settlement"]
        settlement += x_n12(line[start : end + 1])
    return count, amount, fee, settlement


def record(**overrides) -> ZMRecord:
    values = dict(
        txn_code="S22",
        acquirer_code="48022901",
        sender_code="00040000",
        trace_no="005607",
        trans_time="0718215916",
        pan="622280*********0000",
        amount=2_500_000,
        mcc="4900",
        terminal_type="07",
        query_id="201707182159160056078",
        old_pay_method="05",
        order_id="20170718215916038602200",
        pay_card_type="01",
        merchant_fee=-24,
        settle_amount=2_499_976,
        pay_method="0201",
        txn_type="01",
        biz_type="000201",
        mer_id="898319849000018",
        net_amount=2_499_976,
        term_id="01080209",
        mer_reserved="账户充值",
        medium="7",
    )
    values.update(overrides)
    return ZMRecord(**values)


# --- writing ------------------------------------------------------------------------------------------------------


def test_written_zm_lines_are_607_gbk_bytes_with_crlf():
    data = write_zm([record(), record(sub_mer_abbr="二级商户简称测试", mer_reserved="测" * 16)])

    lines = data.split(b"\r\n")
    assert lines[-1] == b""
    assert [len(line) for line in lines[:-1]] == [607, 607]
    assert lines[1][397:429] == ("测" * 16).encode("gbk")
    assert lines[1][327:359] == "二级商户简称测试".encode("gbk").ljust(32)


def test_written_zm_line_matches_the_published_sample_format():
    line = write_zm([record()]).rstrip(b"\r\n")

    assert line[166:179] == b"D000000000024"
    assert line[180:193] == b"C000002499976"
    assert line[360:373] == b" 000000000000"  # sub-merchant split: blank sign, as the network writes it
    assert line[458:470] == b" 00000000000"  # X+n11
    assert line[66:78] == b"000002500000"


def test_lf_newline_on_request():
    assert write_zm([record()], newline=b"\n").count(b"\n") == 1
    assert b"\r" not in write_zm([record()], newline=b"\n")


def test_empty_day_is_an_empty_file():
    assert write_zm([]) == b""
    assert list(parse_zm(b"")) == []


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"mer_reserved": "测" * 17}, "mer_reserved"),  # 34 bytes in a 32-byte field
        ({"order_id": "x" * 33}, "order_id"),
        ({"sub_mer_abbr": "😀"}, "sub_mer_abbr"),  # not in GBK
        ({"order_id": "a\r\nb"}, "order_id"),  # would break the line
        ({"amount": -1}, "amount"),
        ({"amount": 10**12}, "amount"),
        ({"amount": 1.5}, "amount"),
        ({"merchant_fee": 10**12}, "merchant_fee"),
        ({"pan": "6222801234567890000"}, "pan"),  # a clear card number
        ({"trans_time": "1332000000"}, "trans_time"),
    ],
)
def test_writer_refuses_values_that_do_not_fit(overrides, field):
    with pytest.raises(RecordError) as raised:
        write_zm([record(), record(**overrides)])

    assert (raised.value.index, raised.value.field) == (1, field)


def test_writer_refuses_other_types():
    with pytest.raises(RecordError):
        write_zm([ZMERecord()])


# --- round trips and the independent parser -----------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(st.lists(zm_records, max_size=5), st.sampled_from([b"\r\n", b"\n"]))
def test_zm_round_trip(records, newline):
    data = write_zm(records, newline=newline)

    assert [len(line) for line in data.split(newline)[:-1]] == [607] * len(records)
    assert list(parse_zm(data)) == records


@settings(max_examples=60, deadline=None)
@given(st.lists(zme_records, max_size=5), st.sampled_from([b"\r\n", b"\n"]))
def test_zme_round_trip(records, newline):
    data = write_zme(records, newline=newline)

    assert [len(line) for line in data.split(newline)[:-1]] == [339] * len(records)
    assert list(parse_zme(data)) == records


@settings(max_examples=50, deadline=None)
@given(st.lists(zm_records, max_size=6))
def test_independent_parser_finds_the_same_zm_totals(records):
    data = write_zm(records)
    ours = totals(records)

    assert independent_totals(data, PUBLISHED_ZM, 607) == (ours.count, ours.amount, ours.fee, ours.settlement)


@settings(max_examples=50, deadline=None)
@given(st.lists(zme_records, max_size=6))
def test_independent_parser_finds_the_same_zme_totals(records):
    data = write_zme(records)
    ours = totals(records)

    assert independent_totals(data, PUBLISHED_ZME, 339) == (ours.count, ours.amount, ours.fee, ours.settlement)


def test_independent_parser_reads_the_text_fields_we_wrote():
    data = write_zm([record(order_id="ORDER-1", sub_mer_abbr="淘在路上")])
    line = data.rstrip(b"\r\n")

    def text(name):
        start, end = PUBLISHED_ZM[name]
        return line[start : end + 1].decode("gbk").rstrip()

    assert [text(n) for n in ("txn_code", "order_id", "mer_id", "sub_mer_abbr", "mer_reserved", "pan")] == [
        "S22",
        "ORDER-1",
        "898319849000018",
        "淘在路上",
        "账户充值",
        "622280*********0000",
    ]


def test_max_width_values_round_trip():
    widest = record(
        amount=999_999_999_999,
        merchant_fee=-999_999_999_999,
        settle_amount=999_999_999_999,
        instalment_fee=-99_999_999_999,
        order_id="9" * 32,
        mer_reserved="测" * 16,
        reserved="保" * 49,
    )

    assert list(parse_zm(write_zm([widest]))) == [widest]


# --- reading rules ------------------------------------------------------------------------------------------------


def test_crlf_and_lf_give_the_same_records():
    records = [record(), record(order_id="2", amount=1)]
    crlf = write_zm(records)

    assert list(parse_zm(crlf)) == records
    assert list(parse_zm(crlf.replace(b"\r\n", b"\n"))) == records
    assert list(parse_zm(crlf + b"\r\n\n   \r\n")) == records  # trailing blank lines


def test_a_longer_reserved_tail_is_tolerated():
    lines = write_zm([record(), record(order_id="2")]).split(b"\r\n")[:-1]
    longer = b"\r\n".join([lines[0] + b" " * 12, lines[1] + b"X"]) + b"\r\n"

    parsed = list(parse_zm(longer))

    assert parsed[0] == record()
    assert parsed[1] == record(order_id="2", reserved=" " * 98 + "X")


def test_a_stream_is_read_like_bytes():
    data = write_zm([record(), record(order_id="2")])

    assert list(parse_zm(io.BytesIO(data))) == list(parse_zm(data))


def test_a_text_stream_is_refused():
    with pytest.raises(ReconFileError):
        list(parse_zm(io.StringIO("S22")))


def test_malformed_lines_are_reported_with_their_numbers_and_the_rest_is_kept():
    good = [record(order_id=str(n)) for n in range(1, 6)]
    lines = write_zm(good).split(b"\r\n")[:-1]
    lines[1] = lines[1][:600]  # line 2: too short
    lines[2] = lines[2][:66] + b"00000ABC0000" + lines[2][78:]  # line 3: non-numeric amount
    lines[3] = lines[3][:166] + b"X000000000024" + lines[3][179:]  # line 4: bad D/C sign
    data = b"\r\n".join(lines) + b"\r\n"

    parsed = list(parse_zm(data))

    assert parsed[0] == good[0]
    assert parsed[4] == good[4]
    errors = parsed[1:4]
    assert [(e.line_no, e.code, e.field) for e in errors] == [(2, "length", None), (3, "number", 7), (4, "sign", 16)]
    assert errors[0].message == "ZM line is 600 bytes, expected 607"
    assert errors[1].message == "field 7 交易金额 (amount) amount is not a number: '00000ABC0000'"
    assert str(errors[2]).startswith("line 4: field 16 商户手续费 (merchant_fee) sign is not D or C")


def test_line_numbers_count_blank_lines():
    data = b"\n\n" + write_zm([record()])[:100] + b"\n"

    assert [(e.line_no, e.code) for e in parse_zm(data)] == [(3, "length")]


def test_misaligned_fields_are_reported():
    line = write_zm([record()]).rstrip(b"\r\n")
    broken = line[:15] + b"Z" + line[16:]  # byte 15 separates fields 2 and 3

    error = next(parse_zm(broken))
    assert (error.code, error.message) == ("separator", "no space separator at byte 15: fields are misaligned")


def test_strict_mode_raises_the_first_error():
    data = write_zm([record()]) + b"S22 short\r\n"

    with pytest.raises(LineError) as raised:
        list(parse_zm(data, strict=True))

    assert raised.value.line_no == 2


def test_utf8_file_gives_a_clear_error_on_each_chinese_line():
    records = [record(mer_reserved="账户充值"), record(mer_reserved="test"), record(mer_reserved="淘在路上")]
    utf8 = write_zm(records).decode("gbk").encode("utf-8")  # the file re-saved as UTF-8

    parsed = list(parse_zm(utf8))

    assert parsed[1] == records[1]  # an ASCII-only line is the same in both encodings
    for index in (0, 2):
        assert (parsed[index].line_no, parsed[index].code) == (index + 1, "encoding")
        assert parsed[index].message.startswith("the line is UTF-8 text, expected GBK")


def test_utf8_bytes_inside_a_gbk_field_are_named():
    line = bytearray(write_zm([record(mer_reserved="")]).rstrip(b"\r\n"))
    line[397:429] = "中国银联".encode().ljust(32)  # UTF-8 at the right byte width
    error = next(parse_zm(bytes(line)))

    assert (error.line_no, error.code, error.field) == (1, "encoding", 35)
    assert error.message == "field 35 商户自定义域 (mer_reserved) text is UTF-8, expected GBK"


def test_invalid_gbk_bytes_are_reported():
    line = bytearray(write_zm([record(mer_reserved="")]).rstrip(b"\r\n"))
    line[397:399] = b"\xff\xff"
    error = next(parse_zm(bytes(line)))

    assert (error.code, error.field) == ("encoding", 35)
    assert error.message == "field 35 商户自定义域 (mer_reserved) text is not valid GBK"


def test_a_clear_card_number_in_an_upstream_file_is_masked_on_read():
    line = bytearray(write_zm([record()]).rstrip(b"\r\n"))
    line[46:65] = b"6222801234567890123"

    assert next(parse_zm(bytes(line))).pan == "622280*********0123"


def test_blank_x_n_field_is_none_and_blank_sign_is_positive():
    line = bytearray(write_zm([record()]).rstrip(b"\r\n"))
    line[166:179] = b" " * 13
    line[430:443] = b" 000000000150"
    parsed = next(parse_zm(bytes(line)))

    assert (parsed.merchant_fee, parsed.discount_amount) == (None, 150)
    assert totals([parsed]) == Totals(count=1, amount=2_500_000, fee=0, settlement=2_499_976)


def test_iter_lines_streams_the_same_bytes():
    records = [record(), record(order_id="2")]

    assert b"".join(iter_zm_lines(records)) == write_zm(records)


def test_zme_lines_are_339_bytes_and_parse_back():
    adjustment = ZMERecord(
        txn_code="E74",
        acquirer_code="48022901",
        trace_no="005607",
        trans_time="0719101010",
        pan="622280*********0000",
        amount=100,
        prev_trace_no="005600",
        prev_trans_time="0718215916",
        prev_settle_date="0718",
        prev_amount=2_500_000,
        merchant_fee=24,
        settle_amount=-76,
        mer_id="898319849000018",
    )
    data = write_zme([adjustment])

    assert len(data) == 341 and data.endswith(b"\r\n")
    assert data[126:139] == b"C000000000024" and data[140:153] == b"D000000000076"
    assert list(parse_zme(data)) == [adjustment]
    assert next(parse_zme(data[:300])).message == "ZME line is 300 bytes, expected 339"


@pytest.mark.parametrize(
    ("value", "settle", "expected"),
    [
        ("0717230201", date(2017, 7, 18), datetime(2017, 7, 17, 23, 2, 1, tzinfo=BJ)),
        ("1231230100", date(2018, 1, 1), datetime(2017, 12, 31, 23, 1, 0, tzinfo=BJ)),
        ("0101000500", date(2017, 12, 31), datetime(2018, 1, 1, 0, 5, 0, tzinfo=BJ)),
        ("0229120000", date(2024, 3, 1), datetime(2024, 2, 29, 12, 0, 0, tzinfo=BJ)),
    ],
)
def test_transmission_time_takes_the_year_nearest_the_settlement_date(value, settle, expected):
    assert record(trans_time=value).transmitted_at(settle) == expected


def test_blank_original_time_is_none():
    assert record().orig_transmitted_at(date(2017, 7, 18)) is None


@pytest.mark.parametrize(
    ("start", "patch", "code", "field"),
    [
        (35, b"1332000000", "time", 5),  # month 13
        (35, b"0230120000", "time", 5),  # 30 February
        (66, b"-00000000001", "number", 7),
        (180, b"C00000000001A", "number", 17),
        (180, b"+000000000001", "sign", 17),
    ],
)
def test_bad_values_in_an_ascii_line_are_reported(start, patch, code, field):
    line = write_zm([record(mer_reserved="ascii")]).rstrip(b"\r\n")
    bad = line[:start] + patch + line[start + len(patch) :]

    error = next(parse_zm(bad))

    assert (error.line_no, error.code, error.field) == (1, code, field)
