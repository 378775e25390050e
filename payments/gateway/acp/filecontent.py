"""``fileContent`` codec: Base64 of a zlib-wrapped DEFLATE stream (formats.md §6.1, ``AcpService.deCodeFileContent``).

Java's ``new Deflater()`` writes a zlib stream (header ``78 9C``) at the default level, exactly what
``zlib.compress(data)`` does, so encoding here gives the same bytes as the official SDK.
"""

from __future__ import annotations

import base64
import binascii
import zlib

from .errors import ACPFormatError

#: Refuse to inflate more than this (a zip of a day's reconciliation files is a few MB; this guards against bombs).
DEFAULT_MAX_SIZE = 256 * 1024 * 1024


def encode_file_content(data: bytes, *, level: int = -1) -> str:
    """Compress ``data`` with zlib (DEFLATE, zlib header) and return it Base64-encoded (no line breaks)."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise ACPFormatError("fileContent data must be bytes")
    return base64.b64encode(zlib.compress(bytes(data), level)).decode("ascii")


def decode_file_content(value: str | bytes, *, max_size: int = DEFAULT_MAX_SIZE) -> bytes:
    """Base64-decode then inflate a ``fileContent`` value; whitespace and line breaks are tolerated.

    Raises ACPFormatError for bad Base64, a broken or truncated zlib stream, trailing garbage, or output larger than
    ``max_size`` bytes.
    """
    if isinstance(value, str):
        try:
            raw = value.encode("ascii")
        except UnicodeEncodeError as exc:
            raise ACPFormatError("fileContent is not Base64") from exc
    elif isinstance(value, bytes | bytearray):
        raw = bytes(value)
    else:
        raise ACPFormatError("fileContent must be text")
    raw = b"".join(raw.split())  # Java/PHP encoders may wrap lines
    if not raw:
        raise ACPFormatError("fileContent is empty")
    try:
        compressed = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ACPFormatError("fileContent is not Base64") from exc
    inflater = zlib.decompressobj()
    try:
        data = inflater.decompress(compressed, max_size + 1)
    except zlib.error as exc:
        raise ACPFormatError("fileContent is not a zlib stream") from exc
    if len(data) > max_size:
        raise ACPFormatError("fileContent inflates beyond the size limit")
    if not inflater.eof:
        raise ACPFormatError("fileContent zlib stream is truncated")
    if inflater.unused_data:
        raise ACPFormatError("fileContent has data after the zlib stream")
    return data


def decode_file_text(value: str | bytes, encoding: str = "UTF-8", *, max_size: int = DEFAULT_MAX_SIZE) -> str:
    """Decode a ``fileContent`` that holds text (batch request/result files) in the message ``encoding``."""
    data = decode_file_content(value, max_size=max_size)
    try:
        return data.decode(encoding)
    except (UnicodeDecodeError, LookupError) as exc:
        raise ACPFormatError(f"fileContent is not valid {encoding} text") from exc


def encode_file_text(text: str, encoding: str = "UTF-8") -> str:
    """Encode a text file (batch file) in ``encoding`` and wrap it as ``fileContent``."""
    try:
        return encode_file_content(text.encode(encoding))
    except (UnicodeEncodeError, LookupError) as exc:
        raise ACPFormatError(f"the file cannot be written in {encoding}") from exc
