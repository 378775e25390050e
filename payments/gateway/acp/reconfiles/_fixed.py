"""Shared engine of the fixed-width ZM / ZME codecs: slice bytes by the layout, then decode GBK field by field.

Reading rules (issue 5 §3, formats.md §6.3–§6.4):

* lines end in LF or CRLF (the official sample uses CRLF, the production file LF); blank lines are skipped;
* a line shorter than the record length, or without a space byte between two fields, is a :class:`LineError`;
* a line *longer* than the record length is accepted: the extra bytes belong to the reserved tail (newer files split
  the tail into more fields and may need a byte more);
* each field is decoded as strict GBK; a field that is not GBK but is UTF-8 Chinese is reported as UTF-8;
* an error on one line never stops the parser: the other lines are still returned.
"""

from __future__ import annotations

import io
import operator
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import fields as dataclass_fields
from datetime import date, datetime, timedelta
from typing import Any, BinaryIO
from zoneinfo import ZoneInfo

from .errors import LineError, ReconFileError, RecordError
from .layout import Field, Kind

BEIJING = ZoneInfo("Asia/Shanghai")
ENCODING = "gbk"
CRLF = b"\r\n"
LF = b"\n"

Source = bytes | bytearray | memoryview | BinaryIO

_MAX_PAN_DIGITS = 10  # first six and last four (PCI DSS 3.4.1)
_CJK = re.compile("[\u2e80-\u9fff\uf900-\ufaff]")


class _Problem(Exception):
    """A field value is wrong (internal; becomes a LineError or RecordError with context)."""

    def __init__(self, message: str, code: str, field: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.field = field


# --- lines ------------------------------------------------------------------------------------------------------


def iter_lines(source: Source) -> Iterator[tuple[int, bytes]]:
    """Yield ``(line_no, line)`` without the line ending (LF or CRLF); line numbers are 1-based."""
    if isinstance(source, bytes | bytearray | memoryview):
        stream: Iterable[Any] = io.BytesIO(bytes(source))
    elif hasattr(source, "read"):
        stream = source
    else:
        raise ReconFileError("a reconciliation file must be given as bytes or a binary stream")
    for line_no, raw in enumerate(stream, start=1):
        if not isinstance(raw, bytes | bytearray):
            raise ReconFileError("a reconciliation file must be opened in binary mode")
        raw = bytes(raw)
        if raw.endswith(LF):
            raw = raw[:-1]
        if raw.endswith(b"\r"):
            raw = raw[:-1]
        yield line_no, raw


def is_blank(raw: bytes) -> bool:
    return not raw.strip()


def _looks_utf8(raw: bytes) -> bool:
    """True when the bytes are valid UTF-8 holding Chinese characters (3-byte sequences)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return bool(_CJK.search(text))


# --- field decoding ---------------------------------------------------------------------------------------------


def _digits(chunk: bytes, what: str) -> int:
    if not chunk.isdigit():  # bytes.isdigit is ASCII-only, unlike int()
        raise _Problem(f"{what} is not a number: {chunk.decode('latin-1')!r}", "number")
    return int(chunk)


def _text(chunk: bytes) -> str:
    if chunk.isascii():
        return chunk.decode("ascii").rstrip(" ")
    try:
        return chunk.decode(ENCODING).rstrip(" ")
    except UnicodeDecodeError:
        pass
    # Only text that is not GBK is blamed on UTF-8: some GBK text is also valid UTF-8, and GBK must win.
    if _looks_utf8(chunk):
        raise _Problem("text is UTF-8, expected GBK", "encoding")
    raise _Problem("text is not valid GBK", "encoding")


def _check_time(text: str) -> None:
    if not text:
        return
    if len(text) != 10 or not text.isascii() or not text.isdigit():
        raise _Problem("is not a MMDDhhmmss time", "time")
    try:
        _check_mmdd(text[:4])
    except _Problem:
        raise _Problem("is not a MMDDhhmmss time", "time") from None
    hour, minute, second = int(text[4:6]), int(text[6:8]), int(text[8:10])
    if hour > 23 or minute > 59 or second > 59:
        raise _Problem("is not a MMDDhhmmss time", "time")


def _check_mmdd(text: str) -> None:
    if not text:
        return
    if len(text) != 4 or not text.isascii() or not text.isdigit():
        raise _Problem("is not a MMDD date", "date")
    try:
        date(2000, int(text[:2]), int(text[2:]))  # a leap year, so 0229 is a valid day
    except ValueError:
        raise _Problem("is not a MMDD date", "date") from None


def mask_digits(text: str) -> str:
    """Keep the first six and last four digits of a card number, replace the others with ``*`` (length kept)."""
    positions = [i for i, ch in enumerate(text) if ch.isdigit()]
    if len(positions) <= _MAX_PAN_DIGITS:
        return text
    hidden = set(positions[6:-4])
    return "".join("*" if i in hidden else ch for i, ch in enumerate(text))


def decode_field(field: Field, chunk: bytes) -> Any:
    """Decode one field's bytes into its typed value (raises _Problem)."""
    kind = field.kind
    if kind is Kind.AMOUNT:
        return _digits(chunk, "amount")
    if kind is Kind.OPT_AMOUNT:
        return None if is_blank(chunk) else _digits(chunk, "amount")
    if kind is Kind.SIGNED:
        if is_blank(chunk):
            return None
        sign, number = chunk[:1], chunk[1:]
        if sign not in (b"D", b"C", b" "):
            raise _Problem(f"sign is not D or C: {chunk.decode('latin-1')!r}", "sign")
        value = _digits(number, "amount")
        return -value if sign == b"D" else value
    text = _text(chunk)
    if kind is Kind.TIME:
        _check_time(text)
    elif kind is Kind.MMDD:
        _check_mmdd(text)
    elif kind is Kind.PAN:
        text = mask_digits(text)  # never keep a clear card number, even when a file carries one
    return text


# --- field encoding ---------------------------------------------------------------------------------------------


def _encode_text(value: Any, width: int) -> bytes:
    if not isinstance(value, str):
        raise _Problem(f"must be text, not {type(value).__name__}", "type")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise _Problem("contains a control character", "control")
    try:
        data = value.encode(ENCODING)
    except UnicodeEncodeError:
        raise _Problem("cannot be encoded in GBK", "encoding") from None
    if len(data) > width:
        raise _Problem(f"is {len(data)} bytes in GBK, the field holds {width}", "width")
    return data.ljust(width, b" ")


def _encode_int(value: Any, width: int) -> bytes:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Problem(f"must be an integer number of fen, not {type(value).__name__}", "type")
    if value < 0:
        raise _Problem("must not be negative", "range")
    data = b"%0*d" % (width, value)
    if len(data) > width:
        raise _Problem(f"does not fit {width} digits", "range")
    return data


def encode_field(field: Field, value: Any) -> bytes:
    """Encode one typed value into exactly ``field.width`` bytes (raises _Problem)."""
    kind, width = field.kind, field.width
    if kind is Kind.AMOUNT:
        return _encode_int(value, width)
    if kind is Kind.OPT_AMOUNT:
        return b" " * width if value is None else _encode_int(value, width)
    if kind is Kind.SIGNED:
        if value is None:
            return b" " * width
        if isinstance(value, bool) or not isinstance(value, int):
            raise _Problem(f"must be an integer number of fen, not {type(value).__name__}", "type")
        sign = b"D" if value < 0 else b"C" if value > 0 else field.zero_sign.encode("ascii")
        return sign + _encode_int(abs(value), width - 1)
    if kind is Kind.TIME and isinstance(value, str):
        _check_time(value)
    elif kind is Kind.MMDD and isinstance(value, str):
        _check_mmdd(value)
    elif kind is Kind.PAN and isinstance(value, str) and mask_digits(value) != value:
        raise _Problem("card number must be masked (first six and last four digits at most)", "pan")
    return _encode_text(value, width)


# --- fast paths -------------------------------------------------------------------------------------------------
# A day can hold a million lines, so the common case (an ASCII line, ASCII values) avoids the general code above.
# A fast function returns _SLOW when it is unsure; the general code then decides and gives the precise error.

_SLOW = object()
_MONTH_DAYS = (0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
_DIGIT_RUN = re.compile(r"[0-9]")


def _time_ok(text: str) -> bool:
    month, day = int(text[0:2]), int(text[2:4])
    return (
        1 <= month <= 12
        and 1 <= day <= _MONTH_DAYS[month]
        and int(text[4:6]) < 24
        and int(text[6:8]) < 60
        and int(text[8:10]) < 60
    )


def _fast_decoder(field: Field) -> Callable[[str], Any]:
    """Decode a field of an ASCII line from its text slice, or return _SLOW."""
    kind = field.kind
    if kind is Kind.AMOUNT:
        return lambda text: int(text) if text.isdigit() else _SLOW
    if kind is Kind.SIGNED:

        def signed(text: str) -> Any:
            sign, number = text[:1], text[1:]
            if not number.isdigit():
                return _SLOW
            if sign == "D":
                return -int(number)
            return int(number) if sign in ("C", " ") else _SLOW

        return signed
    if kind is Kind.TIME:

        def moment(text: str) -> Any:
            text = text.rstrip(" ")
            if not text:
                return text
            return text if len(text) == 10 and text.isdigit() and _time_ok(text) else _SLOW

        return moment
    if kind is Kind.PAN:

        def pan(text: str) -> Any:
            text = text.rstrip(" ")
            return text if len(_DIGIT_RUN.findall(text)) <= _MAX_PAN_DIGITS else _SLOW

        return pan
    if kind is Kind.OPT_AMOUNT:

        def optional(text: str) -> Any:
            if text.isdigit():
                return int(text)
            return None if not text.strip(" ") else _SLOW

        return optional
    if kind is Kind.TEXT:
        return lambda text: text.rstrip(" ")
    return lambda text: _SLOW  # MMDD (ZME only, short): the general code handles it


def _fast_encoder(field: Field) -> Callable[[Any], bytes | object]:
    """Encode a value when it is plainly valid (ASCII text, in-range int), or return _SLOW."""
    kind, width = field.kind, field.width
    if kind is Kind.AMOUNT:
        limit = 10**width

        def amount(value: Any) -> Any:
            if value.__class__ is int and 0 <= value < limit:
                return b"%0*d" % (width, value)
            return _SLOW

        return amount
    if kind is Kind.SIGNED:
        limit, digits, zero = 10 ** (width - 1), width - 1, field.zero_sign.encode("ascii")

        def signed(value: Any) -> Any:
            if value.__class__ is not int or not -limit < value < limit:
                return _SLOW
            if value < 0:
                return b"D%0*d" % (digits, -value)
            return (b"C" if value else zero) + b"%0*d" % (digits, value)

        return signed
    if kind is Kind.TIME:

        def moment(value: Any) -> Any:
            if value == "":
                return b"          "
            if value.__class__ is str and len(value) == 10 and value.isascii() and value.isdigit() and _time_ok(value):
                return value.encode("ascii")
            return _SLOW

        return moment
    if kind is Kind.PAN:

        def pan(value: Any) -> Any:
            if (
                value.__class__ is str
                and len(value) <= width
                and value.isascii()
                and value.isprintable()
                and len(_DIGIT_RUN.findall(value)) <= _MAX_PAN_DIGITS
            ):
                return value.encode("ascii").ljust(width)
            return _SLOW

        return pan
    if kind is Kind.TEXT:

        def text(value: Any) -> Any:
            if value.__class__ is str and len(value) <= width and value.isascii() and value.isprintable():
                return value.encode("ascii").ljust(width)
            return _SLOW

        return text
    return lambda value: _SLOW


# --- records ----------------------------------------------------------------------------------------------------


class FixedCodec[R]:
    """Reads and writes one record type of one layout."""

    def __init__(self, fields: tuple[Field, ...], length: int, record_cls: Callable[..., R], name: str) -> None:
        names = [f.name for f in dataclass_fields(record_cls)]  # type: ignore[arg-type]
        if names != [f.attr for f in fields]:
            raise AssertionError(f"{record_cls} does not follow the {name} layout")
        self.fields = fields
        self.length = length
        self.record_cls = record_cls
        self.name = name
        self._separators = [f.end for f in fields[:-1]]
        self._separator_bytes = operator.itemgetter(*self._separators)
        self._all_spaces = (0x20,) * len(self._separators)
        self._attrs = tuple(f.attr for f in fields)
        self._getter = operator.attrgetter(*self._attrs)
        self._fast_decoders = [(f.start, f.end if f is not fields[-1] else None, _fast_decoder(f)) for f in fields]
        self._fast_encoders = [_fast_encoder(f) for f in fields]

    def parse_line(self, raw: bytes, line_no: int) -> R | LineError:
        """Parse one line (without its line ending) into a record, or describe what is wrong with it."""
        try:
            return self._parse(raw)
        except _Problem as problem:
            message, code = problem.message, problem.code
            if code != "encoding" and _looks_utf8(raw):
                message, code = f"the line is UTF-8 text, expected GBK ({message})", "encoding"
            return LineError(line_no, message, code=code, field=problem.field)

    def _parse(self, raw: bytes) -> R:
        if len(raw) < self.length:
            raise _Problem(f"{self.name} line is {len(raw)} bytes, expected {self.length}", "length")
        if self._separator_bytes(raw) == self._all_spaces and raw.isascii():
            text = raw.decode("ascii")
            values = [decode(text[start:end]) for start, end, decode in self._fast_decoders]
            if _SLOW not in values:
                return self.record_cls(**dict(zip(self._attrs, values, strict=True)))
        return self._parse_general(raw)

    def _parse_general(self, raw: bytes) -> R:
        for position in self._separators:
            if raw[position] != 0x20:
                raise _Problem(f"no space separator at byte {position}: fields are misaligned", "separator")
        values = {}
        last = self.fields[-1]
        for field in self.fields:
            chunk = raw[field.start :] if field is last else raw[field.start : field.end]
            try:
                values[field.attr] = decode_field(field, chunk)
            except _Problem as problem:
                message = f"field {field.number} {field.label} ({field.attr}) {problem.message}"
                raise _Problem(message, problem.code, field.number) from None
        return self.record_cls(**values)

    def parse(self, source: Source, *, strict: bool = False) -> Iterator[R | LineError]:
        """Yield a record per non-blank line, or a LineError for a malformed one (``strict`` raises it instead)."""
        for line_no, raw in iter_lines(source):
            if is_blank(raw):
                continue
            result = self.parse_line(raw, line_no)
            if strict and isinstance(result, LineError):
                raise result
            yield result

    def format_record(self, record: R, index: int = 0) -> bytes:
        """One record as exactly ``length`` GBK bytes, without a line ending."""
        if not isinstance(record, self.record_cls):  # type: ignore[arg-type]
            raise RecordError(index, "-", f"expected a {self.record_cls.__name__}")  # type: ignore[attr-defined]
        parts = []
        for field, encode, value in zip(self.fields, self._fast_encoders, self._getter(record), strict=True):
            data = encode(value)
            if data is _SLOW:
                try:
                    data = encode_field(field, value)
                except _Problem as problem:
                    raise RecordError(index, field.attr, problem.message) from None
            parts.append(data)
        return b" ".join(parts)  # type: ignore[arg-type]

    def iter_lines(self, records: Iterable[R], *, newline: bytes = CRLF) -> Iterator[bytes]:
        """Yield each record's line with its line ending (stream these to write large files)."""
        if newline not in (CRLF, LF):
            raise ReconFileError("newline must be CRLF or LF")
        for index, record in enumerate(records):
            yield self.format_record(record, index) + newline

    def write(self, records: Iterable[R], *, newline: bytes = CRLF) -> bytes:
        """The whole file: every record line followed by ``newline`` (CRLF like the official sample)."""
        return b"".join(self.iter_lines(records, newline=newline))


def resolve_time(value: str, settle_date: date) -> datetime | None:
    """The aware Beijing datetime of a ``MMDDhhmmss`` value, taking the year that puts it nearest ``settle_date``.

    The files carry no year: a transmission time of ``1231230100`` in the file of settlement date 0101 is in the
    previous year. Blank gives ``None``.
    """
    if not value:
        return None
    try:
        _check_time(value)
    except _Problem as problem:
        raise ReconFileError(f"{value!r} {problem.message}") from None
    month, day = int(value[:2]), int(value[2:4])
    hour, minute, second = int(value[4:6]), int(value[6:8]), int(value[8:10])
    anchor = datetime(settle_date.year, settle_date.month, settle_date.day, tzinfo=BEIJING)
    candidates = []
    for year in (settle_date.year - 1, settle_date.year, settle_date.year + 1):
        try:
            candidates.append(datetime(year, month, day, hour, minute, second, tzinfo=BEIJING))
        except ValueError:  # 29 February of a common year
            continue
    if not candidates:  # 0229 and no leap year within one of the settlement date's year
        raise ReconFileError(f"{value!r} is not a date near {settle_date.isoformat()}")
    best = min(candidates, key=lambda moment: abs(moment - anchor))
    if abs(best - anchor) > timedelta(days=184):  # only 0229 far from any leap year gets here
        raise ReconFileError(f"{value!r} is not a date near {settle_date.isoformat()}")
    return best
