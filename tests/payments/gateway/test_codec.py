import pytest

from payments.gateway.acp.codec import (
    decode_request,
    decode_reserved,
    decode_response,
    encode_request,
    encode_reserved,
    encode_response,
    filter_blank,
    normalise_encoding,
    signing_string,
)
from payments.gateway.acp.errors import ACPFormatError


def test_signing_string_drops_blank_values_and_signature_sorts_by_byte_order_and_keeps_raw_values():
    # given: unsorted keys, an empty and a whitespace-only value, a signature, raw values with & = { } and Chinese
    params = {
        "version": "5.1.0",
        "txnAmt": "100",
        "accessType": "0",
        "Zkey": "upper-case sorts first",
        "reqReserved": "{a=1&b=2}",
        "backUrl": "http://x.test/n?x=1&y=2",
        "frontUrl": "",
        "payTimeout": "   ",
        "customerNm": "张三",
        "signature": "SIG",
        "certId": "68759663125",
    }
    # when
    result = signing_string(params)
    # then
    assert result == (
        "Zkey=upper-case sorts first&accessType=0&backUrl=http://x.test/n?x=1&y=2&certId=68759663125"
        "&customerNm=张三&reqReserved={a=1&b=2}&txnAmt=100&version=5.1.0"
    )


def test_filter_blank_drops_blank_and_trims_like_the_sdk():
    assert filter_blank({"a": " x ", "b": "", "c": " \t", "d": None, "e": "y"}) == {"a": "x", "e": "y"}


def test_request_round_trip_utf8_and_gbk():
    params = {"version": "5.1.0", "encoding": "GBK", "customerNm": "互联网 a+b=c&d", "signature": "ab+/cd=="}
    body = encode_request(params)
    assert b"customerNm=%BB%A5%C1%AA%CD%F8+a%2Bb%3Dc%26d" in body  # GBK bytes, space as '+', '+' as %2B
    assert decode_request(body) == params
    utf8 = dict(params, encoding="UTF-8")
    assert decode_request(encode_request(utf8)) == utf8


def test_request_body_exact_bytes():
    assert encode_request({"a": "x y+z", "b": "中"}, "UTF-8") == b"a=x+y%2Bz&b=%E4%B8%AD"


def test_decode_request_uses_the_declared_encoding():
    body = b"encoding=GBK&customerNm=" + b"".join(b"%%%02X" % c for c in "张三".encode("gbk"))
    assert decode_request(body) == {"encoding": "GBK", "customerNm": "张三"}


@pytest.mark.parametrize(
    "body",
    [b"", b"   ", b"a=1&a=2", b"=1", b"noequals", b"k%FF=1", b"ke y=1", b"encoding=LATIN-1&a=1", b"a=%FF%FE"],
)
def test_decode_request_refuses_malformed_bodies(body):
    with pytest.raises(ACPFormatError):
        decode_request(body)


def test_decode_response_keeps_reserved_values_signatures_and_pem_raw():
    body = (
        "respCode=00&respMsg=成功&reqReserved={a=1&b=2}&list=[x&y]&signature=ab+/c==\n"
        "&signPubKeyCert=-----BEGIN CERTIFICATE-----\r\nMIIB+/=\r\n-----END CERTIFICATE-----&empty="
    ).encode()
    assert decode_response(body) == {
        "respCode": "00",
        "respMsg": "成功",
        "reqReserved": "{a=1&b=2}",
        "list": "[x&y]",
        "signature": "ab+/c==\n",
        "signPubKeyCert": "-----BEGIN CERTIFICATE-----\r\nMIIB+/=\r\n-----END CERTIFICATE-----",
        "empty": "",
    }


def test_decode_response_strips_an_outer_brace_pair_like_the_sdk():
    assert decode_response(b"{a=1&b=2}") == {"a": "1", "b": "2"}


def test_decode_response_gbk():
    assert decode_response("respMsg=成功".encode("gbk"), "GBK") == {"respMsg": "成功"}


@pytest.mark.parametrize("body", [b"", b"a", b"a=1&&b=2", b"a=1&a=2", b"a={1&b=2", b"=x", b"a b=1", b"\xff=1", b"a=[1"])
def test_decode_response_refuses_malformed_bodies(body):
    with pytest.raises(ACPFormatError):
        decode_response(body)


def test_response_round_trip():
    params = {"respCode": "00", "reqReserved": "{k=v&x=y}", "signature": "a+b/c==", "msg": "成功 ok"}
    assert decode_response(encode_response(params)) == params


def test_encode_response_refuses_values_that_would_not_round_trip():
    with pytest.raises(ACPFormatError):
        encode_response({"a": "x&b=y"})


def test_reserved_round_trip_and_rules():
    assert encode_reserved({"a": "1", "b": "二"}) == "{a=1&b=二}"
    assert decode_reserved("{a=1&b=二}") == {"a": "1", "b": "二"}
    with pytest.raises(ACPFormatError):
        encode_reserved({"a": "x&y"})
    with pytest.raises(ACPFormatError):
        decode_reserved("a=1")


@pytest.mark.parametrize(("given", "expected"), [(None, "UTF-8"), ("", "UTF-8"), ("utf-8", "UTF-8"), ("GBK", "GBK")])
def test_normalise_encoding(given, expected):
    assert normalise_encoding(given) == expected


def test_normalise_encoding_refuses_others():
    with pytest.raises(ACPFormatError):
        normalise_encoding("ISO-8859-1")
