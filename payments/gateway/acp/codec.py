"""ACP message codec: the signing string, request bodies, raw response bodies and reserved ``{...}`` values.

Three wire forms exist (formats.md §1, §3.1; official ``SDKUtil``):

* **Requests and notifications** are ``application/x-www-form-urlencoded`` POST bodies (values URL-encoded in the
  message ``encoding``): :func:`encode_request` / :func:`decode_request`.
* **Synchronous answers** are raw ``key=value&...`` text, *not* URL-encoded; a value may hold ``&`` and ``=`` inside
  ``{...}`` or ``[...]`` (reserved fields), and the first ``=`` ends the key (``SDKUtil.parseQString``):
  :func:`encode_response` / :func:`decode_response`.
* **The signing string**: blank values dropped, ``signature`` dropped, keys in byte order, ``k=v`` joined by ``&``
  with raw values: :func:`signing_string`.

Every decoding failure raises :class:`ACPFormatError` and nothing else, whatever the input.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Mapping
from urllib.parse import quote_plus, unquote_to_bytes

from .errors import ACPFormatError

DEFAULT_ENCODING = "UTF-8"
SUPPORTED_ENCODINGS = ("UTF-8", "GBK")

#: ACP field names are ASCII letters and digits (``txnType``, ``signPubKeyCert``, ``reserved1`` ...); ``_`` is
#: tolerated for forward compatibility.
_KEY_RE = re.compile(r"[A-Za-z0-9_]{1,64}")
#: Upper bound on a message we agree to parse (a file-transfer answer carries a whole zip in ``fileContent``).
MAX_MESSAGE_BYTES = 64 * 1024 * 1024

_OPENERS = {"{": "}", "[": "]"}


def normalise_encoding(encoding: str | None) -> str:
    """Return the canonical ACP name (``UTF-8`` or ``GBK``) of ``encoding``; empty means UTF-8.

    Raises ACPFormatError for anything else: the signature depends on the bytes, so guessing is not an option.
    """
    if encoding is None or encoding.strip() == "":
        return DEFAULT_ENCODING
    try:
        name = codecs.lookup(encoding.strip()).name
    except (LookupError, ValueError, TypeError) as exc:
        raise ACPFormatError(f"unsupported encoding {encoding[:40]!r}") from exc
    if name == "utf-8":
        return "UTF-8"
    if name == "gbk":
        return "GBK"
    raise ACPFormatError(f"unsupported encoding {encoding[:40]!r}")


def is_blank(value: str | None) -> bool:
    """True for the values the protocol leaves out of a message (``SDKUtil.filterBlank``, PHP ``trim($v)==''``)."""
    return value is None or value.strip() == ""


def filter_blank(params: Mapping[str, str | None]) -> dict[str, str]:
    """Drop blank values and trim the others, as the official SDK does before signing a request."""
    return {key: value.strip() for key, value in params.items() if not is_blank(value)}  # type: ignore[union-attr]


def signing_string(params: Mapping[str, str | None]) -> str:
    """The string that is hashed and signed (formats.md §3.1).

    Blank values and the ``signature`` key are left out, every other key (``certId``, ``signPubKeyCert`` ...) is in,
    keys are sorted by code point (= byte order for the ASCII keys of ACP) and values are raw (not URL-encoded).
    """
    _check_keys(params)
    items = sorted((key, value) for key, value in params.items() if key != "signature" and not is_blank(value))
    return "&".join(f"{key}={value}" for key, value in items)


# --- requests / notifications (URL-encoded form) ------------------------------------------------------------------


def encode_request(params: Mapping[str, str], encoding: str | None = None) -> bytes:
    """URL-encode ``params`` as a form body in ``encoding`` (default: the message's own ``encoding`` field)."""
    _check_keys(params)
    charset = normalise_encoding(encoding if encoding is not None else params.get("encoding"))
    try:
        pairs = [f"{key}={quote_plus(value, encoding=charset, errors='strict')}" for key, value in params.items()]
    except UnicodeEncodeError as exc:
        raise ACPFormatError(f"a value cannot be written in {charset}") from exc
    return "&".join(pairs).encode("ascii")


def decode_request(body: bytes | str, encoding: str | None = None) -> dict[str, str]:
    """Parse a URL-encoded form body (a notification to ``backUrl`` or a request received by the sandbox).

    The charset is ``encoding`` if given, else the message's own ``encoding`` field, else UTF-8. Duplicate keys, empty
    keys, non-ACP key names and bytes invalid in the charset are refused.
    """
    raw = _as_bytes(body)
    if not raw.strip():
        raise ACPFormatError("empty message")
    pairs: list[tuple[bytes, bytes]] = []
    for chunk in raw.split(b"&"):
        if chunk == b"":
            continue
        key, sep, value = chunk.partition(b"=")
        if not sep:
            raise ACPFormatError("a form field has no '='")
        pairs.append((unquote_to_bytes(key.replace(b"+", b" ")), unquote_to_bytes(value.replace(b"+", b" "))))
    if not pairs:
        raise ACPFormatError("empty message")
    if encoding is None:
        declared = [value for key, value in pairs if key == b"encoding"]
        encoding = declared[0].decode("ascii", errors="replace") if declared else None
    charset = normalise_encoding(encoding)
    result: dict[str, str] = {}
    for key_bytes, value_bytes in pairs:
        try:
            key = key_bytes.decode("ascii")
            value = value_bytes.decode(charset)
        except UnicodeDecodeError as exc:
            raise ACPFormatError(f"a form field is not valid {charset}") from exc
        _add(result, key, value)
    return result


# --- synchronous answers (raw key=value, reserved values in {} or []) ----------------------------------------------


def encode_response(params: Mapping[str, str], encoding: str | None = None) -> bytes:
    """Write ``params`` the way the gateway answers: raw ``k=v&...`` bytes in ``encoding``.

    Raises ACPFormatError when a value would not survive :func:`decode_response` (an ``&`` outside ``{...}``/``[...]``,
    unbalanced brackets); wrap such values with :func:`encode_reserved` or Base64 them.
    """
    _check_keys(params)
    charset = normalise_encoding(encoding if encoding is not None else params.get("encoding"))
    text = "&".join(f"{key}={value}" for key, value in params.items())
    if parse_raw(text) != dict(params):
        raise ACPFormatError("a value contains '&' or brackets that would not round-trip; wrap it in {...}")
    try:
        return text.encode(charset)
    except UnicodeEncodeError as exc:
        raise ACPFormatError(f"a value cannot be written in {charset}") from exc


def decode_response(body: bytes | str, encoding: str | None = None) -> dict[str, str]:
    """Parse a synchronous gateway answer (``SDKUtil.convertResultStringToMap``), stricter than the SDK.

    ``encoding`` is the one of the request (the answer uses the same); default UTF-8. Refused: empty body, empty or
    non-ACP keys, duplicate keys, unclosed ``{``/``[``, bytes invalid in the charset.
    """
    if isinstance(body, bytes):
        if len(body) > MAX_MESSAGE_BYTES:
            raise ACPFormatError("message too large")
        charset = normalise_encoding(encoding)
        try:
            text = body.decode(charset)
        except UnicodeDecodeError as exc:
            raise ACPFormatError(f"the answer is not valid {charset}") from exc
    elif isinstance(body, str):
        text = body
    else:
        raise ACPFormatError("a message must be bytes or text")
    text = text.strip()
    if not text:
        raise ACPFormatError("empty message")
    if text.startswith("{") and text.endswith("}"):
        text = text[1:-1]
    return parse_raw(text)


def parse_raw(text: str) -> dict[str, str]:
    """Split raw ``k=v&k=v`` text; ``&`` inside a ``{...}`` or ``[...]`` value does not separate fields.

    Like the SDK, brackets do not nest: a value opened with ``{`` closes at the next ``}``.
    """
    result: dict[str, str] = {}
    if text == "":
        raise ACPFormatError("empty message")
    key: str | None = None
    buf: list[str] = []
    closer: str | None = None
    for char in text:
        if key is None:
            if char == "=":
                key = "".join(buf)
                buf = []
            elif char == "&":
                raise ACPFormatError("a field has no '='")
            else:
                buf.append(char)
            continue
        if closer is not None:
            if char == closer:
                closer = None
        elif char in _OPENERS:
            closer = _OPENERS[char]
        if char == "&" and closer is None:
            _add(result, key, "".join(buf))
            key, buf = None, []
        else:
            buf.append(char)
    if closer is not None:
        raise ACPFormatError(f"unclosed bracket: missing {closer!r}")
    if key is None:
        raise ACPFormatError("a field has no '='")
    _add(result, key, "".join(buf))
    return result


# --- reserved fields ------------------------------------------------------------------------------------------


def encode_reserved(fields: Mapping[str, str]) -> str:
    """Build a reserved value ``{k=v&k=v}`` (``reqReserved``-style sub-fields, the inner form of ``customerInfo``).

    Values may not contain ``&``, ``=``, ``{``, ``}``, ``[`` or ``]`` (formats.md §2.1); Base64 such data instead.
    """
    _check_keys(fields)
    for value in fields.values():
        if any(char in value for char in "&={}[]"):
            raise ACPFormatError("a reserved sub-field may not contain & = { } [ ]; Base64 it")
    return "{" + "&".join(f"{key}={value}" for key, value in fields.items()) + "}"


def decode_reserved(value: str) -> dict[str, str]:
    """Parse a ``{k=v&k=v}`` reserved value into its sub-fields."""
    if not isinstance(value, str) or not (value.startswith("{") and value.endswith("}")) or len(value) < 2:
        raise ACPFormatError("a reserved value must be wrapped in {...}")
    inner = value[1:-1]
    if any(char in inner for char in "{}"):
        raise ACPFormatError("nested brackets in a reserved value")
    return parse_raw(inner)


# --- helpers ----------------------------------------------------------------------------------------------------


def _as_bytes(body: bytes | str) -> bytes:
    if isinstance(body, bytes):
        data = body
    elif isinstance(body, str):
        try:
            data = body.encode("ascii")
        except UnicodeEncodeError as exc:
            raise ACPFormatError("a URL-encoded body must be ASCII") from exc
    else:
        raise ACPFormatError("a message must be bytes or text")
    if len(data) > MAX_MESSAGE_BYTES:
        raise ACPFormatError("message too large")
    return data


def _check_keys(params: Mapping[str, object]) -> None:
    for key in params:
        if not isinstance(key, str) or not _KEY_RE.fullmatch(key):
            raise ACPFormatError(f"invalid field name {key!r}")
        value = params[key]
        if value is not None and not isinstance(value, str):
            raise ACPFormatError(f"field {key} must be text, not {type(value).__name__}")


def _add(result: dict[str, str], key: str, value: str) -> None:
    if not _KEY_RE.fullmatch(key):
        raise ACPFormatError(f"invalid field name {key[:64]!r}")
    if key in result:
        raise ACPFormatError(f"duplicate field {key}")
    result[key] = value
