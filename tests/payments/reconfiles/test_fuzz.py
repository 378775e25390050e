"""Fuzzing: random or damaged input never raises anything but the codec's own errors."""

import zipfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from payments.gateway.acp.reconfiles import (
    ArchiveError,
    LineError,
    ReconFileError,
    ReportError,
    ZMERecord,
    ZMRecord,
    build_zip,
    parse_rd,
    parse_zm,
    parse_zme,
    read_archive,
    summarise,
    write_zm,
)

UPSTREAM = Path(__file__).resolve().parents[3].parent / "shared" / "fixtures" / "upstream"
GOOD_LINE = write_zm([ZMRecord(txn_code="S22", amount=1, mer_reserved="账户充值")]).rstrip(b"\r\n")
_, GOOD_ZIP = build_zip(mer_id="802310048993424", settle_date=__import__("datetime").date(2015, 9, 5), zm=GOOD_LINE)
LINEISH = st.one_of(
    st.binary(max_size=700),
    st.binary(min_size=600, max_size=620),
    st.binary(min_size=335, max_size=345),
    st.builds(lambda i, b: GOOD_LINE[:i] + b + GOOD_LINE[i + len(b) :], st.integers(0, 606), st.binary(max_size=4)),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(LINEISH, max_size=4), st.sampled_from([b"\n", b"\r\n", b"\r"]))
def test_line_parsers_yield_only_records_or_line_errors(lines, newline):
    data = newline.join(lines)

    for parser, cls in ((parse_zm, ZMRecord), (parse_zme, ZMERecord)):
        for item in parser(data):
            assert isinstance(item, cls | LineError)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=2000))
def test_read_archive_random_bytes(data):
    try:
        read_archive(data)
    except ArchiveError:
        pass


@settings(max_examples=200, deadline=None)
@given(st.integers(0, len(GOOD_ZIP) - 1), st.binary(min_size=1, max_size=8))
def test_read_archive_damaged_zip(position, patch):
    damaged = GOOD_ZIP[:position] + patch + GOOD_ZIP[position + len(patch) :]
    try:
        read_archive(damaged)
    except ArchiveError:
        pass


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 1073))
def test_read_archive_truncated_real_zip(cut):
    data = (UPSTREAM / "802310048993424_20150905.zip").read_bytes()
    assert zipfile.is_zipfile(UPSTREAM / "802310048993424_20150905.zip")
    try:
        read_archive(data[:cut])
    except ArchiveError:
        pass


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.binary(max_size=3000), st.text(max_size=500).map(lambda t: t.encode("gbk", "ignore"))))
def test_parse_rd_random_bytes(data):
    try:
        parse_rd(data)
    except ReportError:
        pass


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.binary(max_size=1500), st.just(GOOD_ZIP[:-5]), st.just(b"PK\x03\x04" + b"\x00" * 40)))
def test_summarise_random_bytes(data):
    try:
        summary = summarise(data)
    except ReconFileError:
        return
    assert summary.count >= 0
