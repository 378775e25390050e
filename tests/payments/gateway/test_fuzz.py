"""Property-based tests: decoders never raise anything but ACPFormatError; encoders round-trip."""

from hypothesis import given
from hypothesis import strategies as st

from payments.gateway.acp.codec import (
    decode_request,
    decode_reserved,
    decode_response,
    encode_request,
    encode_response,
)
from payments.gateway.acp.errors import ACPFormatError
from payments.gateway.acp.filecontent import decode_file_content, encode_file_content

FORMY = st.text(alphabet="ab=&{}[]%+ 2F中\r\n\x00", max_size=60)
KEYS = st.from_regex(r"[A-Za-z0-9_]{1,20}", fullmatch=True)
TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40)


def _only_format_errors(fn, *args):
    try:
        fn(*args)
    except ACPFormatError:
        pass


@given(st.binary(max_size=300), st.sampled_from([None, "UTF-8", "GBK", "bogus"]))
def test_decode_request_random_bytes(body, encoding):
    _only_format_errors(decode_request, body, encoding)


@given(st.one_of(st.text(max_size=200), FORMY))
def test_decode_request_random_text(body):
    _only_format_errors(decode_request, body)


@given(st.binary(max_size=300), st.sampled_from([None, "UTF-8", "GBK"]))
def test_decode_response_random_bytes(body, encoding):
    _only_format_errors(decode_response, body, encoding)


@given(st.one_of(st.text(max_size=200), FORMY))
def test_decode_response_random_text(body):
    _only_format_errors(decode_response, body)
    _only_format_errors(decode_reserved, body)


@given(st.one_of(st.text(max_size=200), st.binary(max_size=200)))
def test_decode_file_content_random(value):
    _only_format_errors(decode_file_content, value)


@given(st.dictionaries(KEYS, TEXT, min_size=1, max_size=8), st.sampled_from(["UTF-8", "GBK"]))
def test_request_round_trip(params, encoding):
    try:
        body = encode_request(params, encoding)
    except ACPFormatError:
        return  # not representable in GBK
    assert decode_request(body, encoding) == params


RAW_VALUE = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="&{}[]"), max_size=40
).filter(lambda v: v == v.strip())


@given(st.dictionaries(KEYS, RAW_VALUE, min_size=1, max_size=8))
def test_response_round_trip(params):
    assert decode_response(encode_response(params, "UTF-8"), "UTF-8") == params


@given(st.binary(max_size=2000))
def test_file_content_round_trip(data):
    assert decode_file_content(encode_file_content(data)) == data
