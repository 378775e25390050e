import base64
import zlib

import pytest

from payments.gateway.acp.errors import ACPFormatError
from payments.gateway.acp.filecontent import (
    decode_file_content,
    decode_file_text,
    encode_file_content,
    encode_file_text,
)


def test_known_vector_matches_java_deflater_default():
    # zlib header 78 9C, default level: what java.util.zip.Deflater() and PHP gzcompress() produce
    assert encode_file_content(b"hello") == "eJzLSM3JyQcABiwCFQ=="
    assert decode_file_content("eJzLSM3JyQcABiwCFQ==") == b"hello"
    assert base64.b64decode(encode_file_content(b"x" * 1000))[:2] == b"\x78\x9c"


def test_round_trip_binary_and_gbk_text():
    data = bytes(range(256)) * 40
    assert decode_file_content(encode_file_content(data)) == data
    text = "5.0.0|1000|10||\r\norderId|customerNm\r\n0823000300003370|互联网\r\n"
    assert decode_file_text(encode_file_text(text, "GBK"), "GBK") == text


def test_line_wrapped_base64_is_accepted():
    value = encode_file_content(b"a" * 5000)
    wrapped = "\r\n".join(value[i : i + 76] for i in range(0, len(value), 76))
    assert decode_file_content(wrapped) == b"a" * 5000


@pytest.mark.parametrize(
    "value",
    [
        "",
        "not base64!",
        base64.b64encode(b"plain, not zlib").decode(),
        base64.b64encode(zlib.compress(b"hello")[:-3]).decode(),  # truncated
        base64.b64encode(zlib.compress(b"hello") + b"junk").decode(),  # trailing data
        "张三",
    ],
)
def test_malformed_values_raise_format_error(value):
    with pytest.raises(ACPFormatError):
        decode_file_content(value)


def test_size_limit_stops_a_bomb():
    bomb = encode_file_content(b"\0" * 2_000_000)
    with pytest.raises(ACPFormatError):
        decode_file_content(bomb, max_size=1_000_000)
    assert len(decode_file_content(bomb, max_size=2_000_000)) == 2_000_000


def test_text_in_wrong_encoding():
    with pytest.raises(ACPFormatError):
        decode_file_text(encode_file_text("互联网", "GBK"), "UTF-8")
