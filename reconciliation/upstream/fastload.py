"""PostgreSQL fast path of the ZM import: raw lines go to a staging table by ``COPY`` and are sliced, checked and
matched in SQL, so a million-line file never becomes a million Python objects.

The codec (``payments.gateway.acp.reconfiles``) stays the authority: only lines that are plainly well formed take the
fast path, and every other line (blank lines aside) is parsed by the codec, which gives the record or the precise
:class:`LineError` with its line number. "Plainly well formed" is decided in Python, per block of lines, with
byte-column checks (C speed: ``block[c::608]``, no per-line Python): every line 607 bytes of printable ASCII, spaces
at every separator, digits in the amounts, ``D``/``C``/space signs (:func:`regular_block`), then real ``MMDDhhmmss``
times or blanks (``0229`` goes to the codec, for its year rule), a card number of at most ten digits and the file's
merchant number (:func:`values_ok`). A block that fails any check is read line by line with the same checks, one line
at a time, and the lines that fail them go to the codec.

Only the 15 fields the records read are COPYed (185 of 607 bytes) into the temporary (unlogged) staging table,
gathered into tab-separated rows on the way (strided byte assignments), so SQL reads fields as columns (``substr``
over a 607-character UTF-8 line walks it from the start, ~10 µs a field) and only converts them: one
``INSERT … SELECT`` writes the records, resolves the transmission time's year (two string bounds,
:func:`year_bounds`) and links each line to the ledger by queryId.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator
from datetime import date, datetime, timedelta

from django.db import connection

from payments.gateway.acp.reconfiles import LineError, ZMRecord
from payments.gateway.acp.reconfiles.layout import ZM_FIELDS, ZM_LINE_LENGTH, Kind
from payments.gateway.acp.reconfiles.zm import ZM_CODEC
from payments.models import Transaction

from .choices import RecordKind
from .models import UpstreamRecord

_STRIDE = ZM_LINE_LENGTH + 1  # a line and its LF
_READ = 4 * 1024 * 1024
_PRINTABLE_NL = bytes(range(0x20, 0x7F)) + b"\n"
_FIELD = {f.attr: f for f in ZM_FIELDS}
_SEPARATORS = tuple(f.end for f in ZM_FIELDS[:-1])
_AMOUNT_COLUMNS = tuple(c for f in ZM_FIELDS if f.kind is Kind.AMOUNT for c in range(f.start, f.end))
_SIGNED = tuple(f for f in ZM_FIELDS if f.kind is Kind.SIGNED)
_TIMES = tuple(f for f in ZM_FIELDS if f.kind is Kind.TIME)
# MMDDhhmmss of a real moment, without 29 February (the codec resolves its year).
_MOMENT = (
    "(?:(?:0[13578]|1[02])(?:0[1-9]|[12][0-9]|3[01])|(?:0[469]|11)(?:0[1-9]|[12][0-9]|30)|02(?:0[1-9]|1[0-9]|2[0-8]))"
    "(?:[01][0-9]|2[0-3])[0-5][0-9][0-5][0-9]"
)


def _line_pattern() -> re.Pattern[bytes]:
    parts = []
    for field in ZM_FIELDS:
        width = field.width
        if field.kind is Kind.AMOUNT:
            parts.append(f"[0-9]{{{width}}}")
        elif field.kind is Kind.SIGNED:
            parts.append(f"(?:[DC ][0-9]{{{width - 1}}}| {{{width}}})")
        elif field.kind is Kind.TIME:
            parts.append(f"(?:[0-9]{{{width}}}| {{{width}}})")
        else:
            parts.append(f"[ -~]{{{width}}}")
    return re.compile(" ".join(parts).encode("ascii"))


_LINE = _line_pattern()


def _columns(block: bytes, start: int, end: int, stride: int) -> Iterator[bytes]:
    for column in range(start, end):
        yield block[column::stride]


def regular_block(block: bytes, lines: int, stride: int = _STRIDE) -> bool:
    """True when every line of ``block`` (LF-ended, or CRLF-ended with ``stride`` 609) passes the layout checks."""
    if len(block) != lines * stride or block[stride - 1 :: stride] != b"\n" * lines:
        return False
    if stride > _STRIDE and block[ZM_LINE_LENGTH::stride] != b"\r" * lines:
        return False
    if block.translate(None, _PRINTABLE_NL) != (b"\r" * lines if stride > _STRIDE else b""):
        return False  # with CRLF: a CR at the end of every line and nowhere else
    spaces = b" " * lines
    if any(block[p::stride] != spaces for p in _SEPARATORS):
        return False
    if not all(block[c::stride].isdigit() for c in _AMOUNT_COLUMNS):
        return False
    for field in _SIGNED:
        if block[field.start :: stride].translate(None, b"DC ") or not all(
            col.isdigit() for col in _columns(block, field.start + 1, field.end, stride)
        ):
            if any(col != spaces for col in _columns(block, field.start, field.end, stride)):
                return False  # neither sign + digits on every line nor blank on every line
    return True  # times: values_ok


_TIME_RUN = re.compile(f"(?:{_MOMENT}|          )*".encode("ascii"))  # MMDDhhmmss moments or blanks, back to back
_DIGIT_FLAGS = bytes(1 if 0x30 <= b <= 0x39 else 0 for b in range(256))  # a translate table: digit → 1, else 0
_AT_MOST_TEN = bytes(range(11))


def _gather(block: bytes, lines: int, field, stride: int) -> bytes:
    """The field of every line of a regular block, back to back (strided assignments)."""
    out = bytearray(field.width * lines)
    for offset, column in enumerate(range(field.start, field.end)):
        out[offset :: field.width] = block[column::stride]
    return bytes(out)


def values_ok(block: bytes, lines: int, mer_id: str, stride: int = _STRIDE) -> bool:
    """True when every line of a regular block (or a single line that matches the layout, LF-ended) holds real
    ``MMDDhhmmss`` times or blanks (29 February aside: the codec resolves its year), a card number of at most ten
    digits, and the file's merchant number or a blank one; any other line goes to the codec, which tells why.

    The digits of the card number are counted for every line at once: each column becomes a big integer of one
    byte a line (1 for a digit), their sum holds each line's count in its byte (at most 19: no carry)."""
    for field in _TIMES:
        if not _TIME_RUN.fullmatch(_gather(block, lines, field, stride)):
            return False
    pan = _FIELD["pan"]
    digits = sum(int.from_bytes(block[c::stride].translate(_DIGIT_FLAGS), "big") for c in range(pan.start, pan.end))
    if digits.to_bytes(lines, "big").translate(None, _AT_MOST_TEN):
        return False
    field = _FIELD["mer_id"]
    merchants = _gather(block, lines, field, stride)
    own = mer_id.encode("ascii", "replace").ljust(field.width) if len(mer_id) <= field.width else None
    return merchants == b" " * (field.width * lines) or (own is not None and merchants == own * lines)


#: The fields the records and the SQL checks read (the others are never staged): 15 of 42, 185 of 607 bytes.
_STAGED = tuple(
    f
    for f in ZM_FIELDS
    if f.attr
    in {
        "txn_code", "trace_no", "trans_time", "pan", "amount", "query_id", "order_id", "pay_card_type",
        "merchant_fee", "settle_amount", "orig_trans_time", "txn_type", "biz_type", "orig_query_id", "mer_id",
    }
)  # fmt: skip
_ROW = sum(f.width + 1 for f in _STAGED)  # a staged row: the fields, each followed by a tab (the last by LF)


def _escape(block: bytes) -> bytes:
    return block.replace(b"\\", b"\\\\") if b"\\" in block else block


def _split(block: bytes, lines: int, stride: int = _STRIDE) -> bytes:
    """The staged fields of a regular block, tab-separated, a row a line: gathered byte column by byte column
    (strided assignments, no per-line Python; the fields hold printable ASCII only, so no tab of their own)."""
    out = bytearray(b"\t" * (_ROW * lines))
    position = 0
    for field in _STAGED:
        for column in range(field.start, field.end):
            out[position::_ROW] = block[column::stride]
            position += 1
        position += 1
    out[_ROW - 1 :: _ROW] = b"\n" * lines
    return _escape(bytes(out))


_EMPTY_ROW = b"\t" * (len(_STAGED) - 1)  # a row of empty fields: a line the codec handles, or a blank one
_COLUMNS = ", ".join(f"f{f.number}" for f in _STAGED)


class ZMStager:
    """Streams a ZM source into the staging table ``stage``; codec lines are handed to ``codec_line``."""

    def __init__(self, stage: str, codec_line: Callable[[int, bytes], None], *, mer_id: str) -> None:
        self.stage = stage
        self.codec_line = codec_line
        self.mer_id = mer_id

    def load(self, stream) -> None:
        line_no = 0  # lines before the current block
        rest = b""
        raw = connection.connection
        while True:
            chunk = stream.read(_READ)
            if not chunk:
                break
            data = rest + chunk
            cut = data.rfind(b"\n") + 1
            if not cut:
                rest = data
                continue
            block, rest = data[:cut], data[cut:]
            line_no = self._block(raw, block, line_no)
        if rest:
            self._block(raw, rest + b"\n", line_no)

    def _block(self, raw, block: bytes, line_no: int) -> int:
        lines = block.count(b"\n")
        # CRLF lines (the network's) are read as they are, 609 bytes apart; else the line ends become LF.
        crlf = len(block) == lines * (_STRIDE + 1) and block[ZM_LINE_LENGTH :: _STRIDE + 1] == b"\r" * lines
        stride = _STRIDE + 1 if crlf else _STRIDE
        normal = block if crlf or b"\r" not in block else block.replace(b"\r\n", b"\n")
        if regular_block(normal, lines, stride) and values_ok(normal, lines, self.mer_id, stride):
            out = _split(normal, lines, stride)
            codec: list[tuple[int, bytes]] = []
        else:
            out_parts, codec = [], []
            normal = block.replace(b"\r\n", b"\n") if crlf else normal
            for index, line in enumerate(normal.split(b"\n")[:lines], start=line_no + 1):
                if len(line) == ZM_LINE_LENGTH and _LINE.fullmatch(line) and values_ok(line + b"\n", 1, self.mer_id):
                    out_parts.append(_split(line + b"\n", 1)[:-1])
                else:
                    out_parts.append(_EMPTY_ROW)
                    if line.strip():
                        codec.append((index, line))
            out = b"\n".join(out_parts) + b"\n"
        with raw.cursor() as cursor, cursor.copy(f"COPY {self.stage} ({_COLUMNS}) FROM STDIN") as copy:
            copy.write(out)
        for index, line in codec:
            self.codec_line(index, line)
        return line_no + lines


def _sub(attr: str) -> str:
    return f"s.f{_FIELD[attr].number}"


def _text(attr: str, limit: int | None = None) -> str:
    """The field without its trailing spaces, cut to ``limit`` characters (no cut when the field is not wider)."""
    value = f"rtrim({_sub(attr)}, ' ')"
    return f"left({value}, {limit})" if limit and limit < _FIELD[attr].width else value


def _signed(attr: str) -> str:
    field = _FIELD[attr]
    column = _sub(attr)
    return (
        f"CASE WHEN {column} = '{' ' * field.width}' THEN NULL "
        f"WHEN left({column}, 1) = 'D' THEN -(substr({column}, 2)::bigint) ELSE substr({column}, 2)::bigint END"
    )


def stage_sql(stage: str) -> str:
    fields = ", ".join(f"f{f.number} text" for f in _STAGED)
    return f"CREATE TEMPORARY TABLE {stage} (line_no bigint GENERATED ALWAYS AS IDENTITY, {fields}) ON COMMIT DROP"


_COMMON_YEAR = datetime(2001, 1, 1)
_YEAR_SECONDS = 365 * 86400


def _nearest_year(moment: datetime, settle_date: date) -> int:
    """``resolve_time``'s choice for a moment (not 29 February): -1, 0 or +1 year from the settlement date's."""
    anchor = datetime(settle_date.year, settle_date.month, settle_date.day)
    candidates = [moment.replace(year=settle_date.year + shift) for shift in (-1, 0, 1)]
    best = min(range(3), key=lambda i: abs(candidates[i] - anchor))  # ties: the earlier year, as the codec
    return best - 1


@functools.lru_cache(maxsize=64)
def year_bounds(settle_date: date) -> tuple[str, str]:
    """``(lo, hi)``: a ``MMDDhhmmss`` below ``lo`` is in the next year, from ``hi`` in the previous one, else in the
    settlement date's year, as :func:`resolve_time` decides (29 February aside: the codec's). The choice only
    falls as the moment moves through the year, so two binary searches over its seconds find the bounds and SQL
    compares strings instead of computing three distances a line."""

    def first(predicate) -> str:
        low, high = 0, _YEAR_SECONDS  # the first second for which predicate holds (high: none)
        while low < high:
            middle = (low + high) // 2
            if predicate(_nearest_year(_COMMON_YEAR + timedelta(seconds=middle), settle_date)):
                high = middle
            else:
                low = middle + 1
        return (_COMMON_YEAR + timedelta(seconds=low)).strftime("%m%d%H%M%S") if low < _YEAR_SECONDS else "9999999999"

    return first(lambda shift: shift <= 0), first(lambda shift: shift < 0)


def insert_records(*, stage: str, run_id: int, merchant_id: int, settle_date: date) -> int:
    """Insert the staged lines as ZM records, linked to the ledger rows of the merchant day by queryId; return how
    many. (Joining the merchant day only lets PostgreSQL read it through ``(merchant, settle_date)``, never the whole
    ledger; a line whose ledger row is of another day is linked by the matching's own passes.)

    The transmission time takes the year that puts it nearest the settlement date, as the codec's
    ``resolve_time`` does (Beijing wall-clock arithmetic, then the Beijing offset).
    """
    record = UpstreamRecord._meta.db_table
    ledger = Transaction._meta.db_table
    tt = _sub("trans_time")
    lo, hi = year_bounds(settle_date)
    year = (
        f'CASE WHEN {tt} COLLATE "C" < %(lo)s THEN %(y)s + 1 WHEN {tt} COLLATE "C" >= %(hi)s THEN %(y)s - 1 '
        "ELSE %(y)s END"
    )
    moment = (
        f"CASE WHEN {tt} = '          ' THEN NULL ELSE make_timestamp({year}, substr({tt}, 1, 2)::int, "
        f"substr({tt}, 3, 2)::int, substr({tt}, 5, 2)::int, substr({tt}, 7, 2)::int, substr({tt}, 9, 2)::int) "
        "AT TIME ZONE 'Asia/Shanghai' END"
    )
    query_id = _text("query_id", 21)
    sql = (
        f"INSERT INTO {record} (run_id, kind, line_no, txn_code, txn_type, query_id, order_id, trace_no, trans_time, "
        "transmitted_at, card_masked, card_type, amount, merchant_fee, settle_amount, orig_query_id, biz_type, "
        "transaction_id) "
        f"SELECT %(run)s, %(kind)s, s.line_no, {_text('txn_code', 3)}, {_text('txn_type', 2)}, s.query_id, "
        f"{_text('order_id', 40)}, {_text('trace_no', 6)}, {_text('trans_time', 10)}, {moment}, "
        f"{_text('pan', 19)}, {_text('pay_card_type', 2)}, {_sub('amount')}::bigint, {_signed('merchant_fee')}, "
        f"{_signed('settle_amount')}, {_text('orig_query_id', 21)}, {_text('biz_type', 6)}, t.id "
        f"FROM (SELECT s.*, {query_id} AS query_id FROM {stage} s "
        f"WHERE s.f1 <> '') s "
        f"LEFT JOIN {ledger} t ON t.query_id = s.query_id AND t.merchant_id = %(merchant)s "
        "AND t.settle_date = %(day)s AND s.query_id <> ''"
    )
    params = {
        "run": run_id,
        "kind": RecordKind.ZM,
        "merchant": merchant_id,
        "day": settle_date,
        "y": settle_date.year,
        "lo": lo,
        "hi": hi,
    }
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


def parse_codec_line(line_no: int, raw: bytes) -> ZMRecord | LineError:
    return ZM_CODEC.parse_line(raw, line_no)
