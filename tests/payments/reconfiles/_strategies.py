"""Hypothesis strategies for ZM / ZME records: GBK text up to the field width, signed fen, valid MMDDhhmmss times."""

from datetime import datetime

from hypothesis import strategies as st

from payments.gateway.acp.reconfiles import ZM_FIELDS, ZME_FIELDS, ZMERecord, ZMRecord
from payments.gateway.acp.reconfiles.layout import Kind

CHARS = st.one_of(
    st.characters(min_codepoint=0x21, max_codepoint=0x7E),  # printable ASCII
    st.characters(min_codepoint=0x4E00, max_codepoint=0x9FA5),  # CJK, all in GBK (2 bytes each)
    st.sampled_from("账户充值淘在路上 ·—"),
)


def fit_gbk(text: str, width: int) -> str:
    """Cut ``text`` to at most ``width`` GBK bytes; no trailing space (the files pad with spaces)."""
    while len(text.encode("gbk")) > width:
        text = text[:-1]
    return text.rstrip(" ")


def gbk_text(width: int) -> st.SearchStrategy[str]:
    full = st.lists(CHARS, min_size=width, max_size=width).map(lambda cs: fit_gbk("".join(cs), width))
    return st.one_of(st.lists(CHARS, max_size=width).map(lambda cs: fit_gbk("".join(cs), width)), full)


def masked_pan() -> st.SearchStrategy[str]:
    return st.builds(
        lambda head, stars, tail: f"{head}{'*' * stars}{tail}",
        st.from_regex(r"[0-9]{6}", fullmatch=True),
        st.integers(3, 9),
        st.from_regex(r"[0-9]{4}", fullmatch=True),
    )


def mmddhhmmss() -> st.SearchStrategy[str]:
    moments = st.datetimes(min_value=datetime(2024, 1, 1), max_value=datetime(2024, 12, 31, 23, 59, 59))
    return st.one_of(st.just(""), moments.map(lambda m: m.strftime("%m%d%H%M%S")))


def _value(field) -> st.SearchStrategy:
    limit = 10**field.width - 1
    signed_limit = 10 ** (field.width - 1) - 1
    if field.kind is Kind.AMOUNT:
        return st.one_of(st.integers(0, limit), st.just(limit))
    if field.kind is Kind.OPT_AMOUNT:
        return st.one_of(st.none(), st.integers(0, limit))
    if field.kind is Kind.SIGNED:
        return st.one_of(st.none(), st.integers(-signed_limit, signed_limit), st.sampled_from([-signed_limit, 0]))
    if field.kind is Kind.TIME:
        return mmddhhmmss()
    if field.kind is Kind.MMDD:
        return st.one_of(st.just(""), st.dates().map(lambda d: d.strftime("%m%d")))
    if field.kind is Kind.PAN:
        return st.one_of(st.just(""), masked_pan())
    return gbk_text(field.width)


def records(cls, fields) -> st.SearchStrategy:
    return st.builds(cls, **{field.attr: _value(field) for field in fields})


zm_records = records(ZMRecord, ZM_FIELDS)
zme_records = records(ZMERecord, ZME_FIELDS)
