"""PostgreSQL fast path of batch refund validation: the whole file checked in the database, in sets.

The design of ``reconciliation.upstream.fastload``: the lines are ``COPY``-ed into a staging table and
checked and matched in SQL, so a million-line file never becomes a million Python objects. The tables
are unlogged (no WAL: they live for one run) in a schema of the run's own (``refund_bulk_<batch>_<run>``,
first on the connection's search path while it runs, dropped at its end), so that the pipeline can
write the lines with a second connection.
The parser (``formats.parse``) stays the authority on a line's format: only lines that are plainly well
formed take the fast path, every other line is parsed in Python (same ``LineError``, same message).

* **Staging.** A text file is read a block at a time (``readers.iter_raw_blocks``: the same line cuts as
  the parser's reader). A block whose every line matches one regular expression built from the title
  line (``_line_pattern``: the exact rules of ``build_line`` for a field as it stands: id patterns and no
  Excel number, amount, the original named, time, currency, lengths, printable ASCII without ``|`` or
  backslash) is ``COPY``-ed as it is (``DELIMITER '|'``; the staging table numbers its rows). In any other
  block the lines that do not match (non-ASCII text, GBK, tabs, spaces around a field, a leading zero,
  any error...) are parsed in Python one by one, and a placeholder row keeps the numbering. A workbook's
  rows (python-calamine) are matched the same way, one ``|``-joined line per row (the amount as Python
  writes the number). The header totals and the line count are checked on the staged amounts plus the
  parser's.
* **Checks against the ledger, in sets** (one ``CREATE TABLE AS``, hash joins over the whole file):
  merchant number, order id used by a refund or a ledger row, held by another batch, repeated in the file
  (the first line naming it keeps it), the original (by ``origQryId``, or ``origOrderId`` +
  ``origTxnTime``) and its time, type, status and window.
* **The cap** per original: what is refundable (amount − refunded − held by refunds and other live
  batches) against the sum of the file's lines; only the originals whose lines ask for more than that
  are read (in file order) and allocated line by line in Python, as ``refund_validate_chunk`` does.

The lines ``SELECT`` (its tables named with the schema) is handed to the pipeline, which writes the lines
and holds their order ids with ``INSERT ... SELECT`` (a large file by two connections, each a half). The
rules are those of ``batch.refund_validate_chunk`` (the path used on SQLite);
``tests/integration/test_refund_bulk_pg.py`` compares both on the same files.
"""

from __future__ import annotations

import codecs
import json
import re
import uuid
from datetime import timedelta

from django.db import connection
from django.utils import timezone

from payments.choices import REFUNDABLE_TYPES, TxnStatus
from payments.models import Transaction
from payments.money import format_yuan
from payments.selectors import merchant_refund_window_days
from payments.settlement import current_settlement_day
from portal.batches.choices import RELEASED, BatchStatus
from portal.batches.models import Batch, BatchLine, BatchOrderId
from portal.batches.readers import calamine_values, iter_raw_blocks, text_encoding, xlsx_sheet_rows
from portal.batches.registry import BulkValidation, FileError, FileRejected, LineError, ParsedLine
from portal.batches.side import SideConnection, halves

from .choices import RESERVING
from .formats.columns import MAX_LEN
from .formats.parse import line_data, parse_line, text_amount, text_header, text_title, xlsx_title
from .models import Refund
from .selectors import BATCH_KIND, RESERVING_LINES

SCHEMA_PREFIX = "refund_bulk_"  # one schema a run: refund_bulk_<batch>_<run>
STAGE = "refund_bulk_stage"
PARSED = "refund_bulk_parsed"  # lines the Python parser read: parsed ones and parse errors
CHECKED = "refund_bulk_checked"
HELD = "refund_bulk_held"
CAP = "refund_bulk_cap"

_FLUSH_BYTES = 4 * 1024 * 1024
_ID_KEYS = {"orderId": 32, "origQryId": 21, "origOrderId": 40, "merId": 15}
# YYYYMMDDhhmmss of a real moment (29 February aside: the parser decides it).
_MOMENT = (
    "^[1-9][0-9]{3}(?:(?:0[13578]|1[02])(?:0[1-9]|[12][0-9]|3[01])|(?:0[469]|11)(?:0[1-9]|[12][0-9]|30)"
    "|02(?:0[1-9]|1[0-9]|2[0-8]))(?:[01][0-9]|2[0-3])[0-5][0-9][0-5][0-9]$"
)


def _json(value) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _execute(sql: str, params=None):
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall() if cursor.description else None


# --- staging ------------------------------------------------------------------------------------------


class _Stager:
    """Buffers staged rows and parsed lines and ``COPY``-ies them in blocks of a few MB."""

    def __init__(self, keys: list, *, explicit_line_no: bool, progress, first_line: int) -> None:
        self.keys = keys
        self.first_line = first_line
        self.blank: list[int] = []  # line numbers of blank lines (no line of the batch)
        self.width = len(keys)
        self.progress = progress
        self.stage: list[bytes] = []
        self.staged_bytes = 0
        self.parsed: list[tuple] = []
        self.count = 0  # lines of the file (blank ones aside)
        # The order ids seen so far (bytes for a text file, str for a workbook) and those seen twice:
        # finding them here, while PostgreSQL ingests the COPY, spares SQL a hash of the whole file.
        self.order_ids: set = set()
        self.repeated: set = set()
        self._pending_ids: list = []
        self.total = 0  # amounts of the lines the parser read, for the header check
        columns = ", ".join(f"c{i}" for i in range(self.width))
        self.stage_sql = f"COPY {STAGE} ({columns}) FROM STDIN (DELIMITER '|')"
        self.explicit_line_no = explicit_line_no
        self.placeholder = b"\\N" + b"|" * (self.width - 1) + b"\n"
        if explicit_line_no:
            self.stage_sql = f"COPY {STAGE} (line_no, {columns}) FROM STDIN (DELIMITER '|')"
        _execute(
            f"CREATE UNLOGGED TABLE {STAGE} (line_no bigint GENERATED BY DEFAULT AS IDENTITY "
            f"(START WITH {int(first_line)}), {', '.join(f'c{i} text' for i in range(self.width))})"
        )

    def info(self, *, header, yuan: bool) -> dict:
        return {
            "keys": self.keys,
            "yuan": yuan,
            "header": header,
            "count": self.count,
            "total": self.total,
            "first_line": self.first_line,
            "blank": self.blank,
            "repeated": sorted(i if isinstance(i, str) else i.decode("ascii", "replace") for i in self.repeated),
        }

    def add_order_ids(self, ids: list) -> None:
        self._pending_ids.extend(ids)

    def _note_order_ids(self) -> None:
        ids, self._pending_ids = self._pending_ids, []
        new = set(ids)
        if len(new) != len(ids) or not self.order_ids.isdisjoint(new):
            seen = set()
            for order_id in ids:
                if order_id in seen or order_id in self.order_ids:
                    self.repeated.add(order_id)
                seen.add(order_id)
        self.order_ids |= new

    def add_block(self, block: bytes, lines: int) -> None:
        self.stage.append(block)
        self.staged_bytes += len(block)
        self.count += lines

    def add_placeholder(self) -> None:
        self.stage.append(self.placeholder)

    def add_parsed(self, item) -> None:
        if isinstance(item, ParsedLine):
            self._pending_ids.append(item.order_id if self.explicit_line_no else item.order_id.encode())
        if isinstance(item, LineError):
            row = (item.line_no, item.order_id, item.amount, _json(item.data or {}), item.code, item.column,
                   _json(item.params or {}))  # fmt: skip
        else:
            row = (item.line_no, item.order_id, item.amount, _json(line_data(item.data)), None, None, None)
        self.parsed.append(row)
        self.staged_bytes += 64

    def maybe_flush(self, max_lines: int) -> None:
        if self.count > max_lines:
            raise FileRejected("too_many_lines", {"limit": max_lines})
        if self.staged_bytes >= _FLUSH_BYTES:
            self.flush()
            self.progress()

    def flush(self) -> None:
        self._note_order_ids()
        raw = connection.connection
        if self.stage:
            with raw.cursor() as cursor, cursor.copy(self.stage_sql) as copy:
                copy.write(b"".join(self.stage))
            self.stage = []
        if self.parsed:
            sql = f"COPY {PARSED} (line_no, order_id, amount, data, error_code, error_column, error_params) FROM STDIN"
            with raw.cursor() as cursor, cursor.copy(sql) as copy:
                for row in self.parsed:
                    copy.write_row(row)
            self.parsed = []
        self.staged_bytes = 0


_SCI_GUARD = rb"(?![0-9]+[eE][0-9]+[|\n])"  # not what Excel makes of a long number (2E10): excel_number_id
_PRINTABLE = rb"[ -\[\]-{}~]"  # printable ASCII but | and \ (COPY's escape)
_MOMENT_BYTES = _MOMENT[1:-1].encode("ascii")


def _field_pattern(key: str | None, *, yuan: bool, required: bool) -> bytes:
    """A field ``build_line`` accepts as it is (the fast path's; any other goes to the parser)."""
    if key == "orderId":
        return _SCI_GUARD + rb"[0-9A-Za-z]{8,32}"
    if key == "txnAmt":
        # yuan: at most two decimals, more than zero, under 10^10; fen: more than zero, at most 12 digits.
        return rb"(?=[0-9.]*[1-9])[0-9]{1,10}(?:\.[0-9]{1,2})?" if yuan else rb"[1-9][0-9]{0,11}"
    if key in _ID_KEYS:
        body = _SCI_GUARD + rb"[0-9A-Za-z]{1,%d}" % _ID_KEYS[key]
    elif key == "origTxnTime":
        body = _MOMENT_BYTES
    elif key == "currencyCode":
        return rb"(?:156)?"
    elif key is not None:
        return rb"(?!=)" + _PRINTABLE + rb"{0,%d}" % MAX_LEN.get(key, 64)
    else:
        return _PRINTABLE + b"*"
    return body if required else b"(?:" + body + b")?"


def _line_pattern(keys: list, *, yuan: bool) -> bytes:
    """One line (LF-ended) that ``build_line`` accepts as it is: the original named by ``origQryId``,
    or by ``origOrderId`` and ``origTxnTime``."""
    variants = []
    for named in (("origQryId",), ("origOrderId", "origTxnTime")):
        if all(k in keys for k in named):
            fields = [_field_pattern(k, yuan=yuan, required=k in named) for k in keys]
            variants.append(rb"\|".join(fields) + b"\n")
    return b"(?:" + b"|".join(variants) + b")"


def _stage_text(batch, stream, ctx, progress) -> dict:
    encoding = text_encoding(stream)
    codec = "utf-8" if encoding == "utf-8-sig" else encoding
    first = True
    header = keys = None
    stager: _Stager | None = None
    block_re = line_re = order_re = None
    amount_at = order_at = None

    def decode(raw: bytes | None) -> str | None:
        nonlocal first
        if raw is None:
            return None
        if first and raw.startswith(codecs.BOM_UTF8):
            raw = raw[len(codecs.BOM_UTF8) :]
        first = False
        try:
            return raw.decode(codec)
        except UnicodeDecodeError:
            return None

    for start, block, skip_first in iter_raw_blocks(stream):
        if stager is not None and not skip_first and block_re.fullmatch(block):
            stager.add_block(block, block.count(b"\n"))
            stager.add_order_ids(order_re.findall(block, 0, len(block) - 1))
            stager.maybe_flush(ctx.max_lines)
            continue
        lines = block.split(b"\n")
        lines.pop()
        for index, raw in enumerate(lines):
            line_no = start + index
            if skip_first and index == 0:
                raw = None
            if stager is None:
                text = decode(raw)
                if header is None:
                    header = text_header(text)
                    if isinstance(header, FileError):
                        raise FileRejected(header.code, header.params)
                    continue
                title = text_title(text, line_no)
                if isinstance(title, FileError):
                    raise FileRejected(title.code, title.params)
                keys = title
                amount_at = keys.index("txnAmt")
                stager = _Stager(keys, explicit_line_no=False, progress=progress, first_line=line_no + 1)
                line = _line_pattern(keys, yuan=False)
                block_re, line_re = re.compile(line + b"*"), re.compile(line)
                order_at = keys.index("orderId")
                order_re = re.compile(rb"^(?:[^|\n]*\|){%d}([^|\n]*)" % order_at, re.MULTILINE)
                continue
            if raw is not None and line_re.fullmatch(raw + b"\n"):
                stager.add_block(raw + b"\n", 1)
                stager.add_order_ids([raw.split(b"|")[order_at]])
                first = False
                continue
            stager.add_placeholder()
            text = decode(raw)
            if text is None:
                stager.count += 1
                stager.add_parsed(LineError(line_no, "line_unreadable"))
                continue
            if not text.strip():
                stager.blank.append(line_no)
                continue
            stager.count += 1
            values = text.split("|")
            stager.total += text_amount(values, amount_at)
            stager.add_parsed(parse_line(line_no, keys, values, yuan=False))
        if stager is not None:
            stager.maybe_flush(ctx.max_lines)
    if header is None:
        raise FileRejected("header_invalid", {})
    if stager is None:
        raise FileRejected("title_invalid", {})
    stager.flush()
    return stager.info(header=header, yuan=False)


def _stage_xlsx(batch, stream, ctx, progress) -> dict:
    calamine, rows = xlsx_sheet_rows(stream)
    keys = None
    stager = line_re = None
    amount_at = order_at = width = 0
    for row_no, row in rows:
        if keys is None:
            values = calamine_values(row) if calamine else row
            if all(v is None or str(v).strip() == "" for v in values):
                continue
            title = xlsx_title(values, row_no)
            if isinstance(title, FileError):
                raise FileRejected(title.code, title.params)
            keys = title
            width = len(keys)
            amount_at, order_at = keys.index("txnAmt"), keys.index("orderId")
            stager = _Stager(keys, explicit_line_no=True, progress=progress, first_line=row_no + 1)
            line_re = re.compile(_line_pattern(keys, yuan=True).decode("ascii"))
            continue
        if all(v is None or (type(v) is str and not v.strip()) for v in row):
            stager.blank.append(row_no)
            continue
        stager.count += 1
        text = _xlsx_line(row, width, amount_at)
        if text is not None and line_re.fullmatch(text):
            stager.stage.append(f"{row_no}|{text}".encode("ascii"))
            stager._pending_ids.append(row[order_at])
            stager.staged_bytes += len(text)
        else:
            stager.add_parsed(parse_line(row_no, keys, calamine_values(row) if calamine else row, yuan=True))
        if stager.staged_bytes >= _FLUSH_BYTES or stager.count > ctx.max_lines:
            stager.maybe_flush(ctx.max_lines)
    if stager is None:
        raise FileRejected("title_invalid", {})
    stager.maybe_flush(ctx.max_lines)
    stager.flush()
    return stager.info(header=None, yuan=True)


def _xlsx_line(row, width: int, amount_at: int) -> str | None:
    """A row's cells as one ``|``-separated line for the line pattern (the amount as Python writes
    the number), or None when a cell is neither text nor empty (a number in an id column, a date...)."""
    cells = []
    for index, value in enumerate(row):
        kind = type(value)
        if kind is str:
            if index >= width and value:
                return None
            cells.append(value)
        elif value is None:
            cells.append("")
        elif index == amount_at and (kind is float or kind is int):
            cells.append(repr(value))
        else:
            return None
    if len(cells) > width:
        del cells[width:]
    elif len(cells) < width:
        cells.extend([""] * (width - len(cells)))
    return "|".join(cells) + "\n"


def _col(keys: list, key: str) -> str | None:
    return f"s.c{keys.index(key)}" if key in keys else None


def _amount_sql(keys: list, yuan: bool) -> str:
    c = _col(keys, "txnAmt")
    return f"round({c}::numeric * 100)::bigint" if yuan else f"{c}::bigint"


def _stage(batch, stream, ctx, progress) -> None:
    """Stage the file (see the module docstring); the file-level checks of the parser (header, title,
    totals, line count) raise ``FileRejected`` as the parser's ``FileError`` would."""
    _open_schema(batch, ctx)
    _execute(
        f"CREATE UNLOGGED TABLE {PARSED} (line_no bigint, order_id text, amount bigint, data jsonb, "
        "error_code text, error_column text, error_params jsonb)"
    )
    if ctx.fmt == "xlsx":
        info = _stage_xlsx(batch, stream, ctx, progress)
    else:
        info = _stage_text(batch, stream, ctx, progress)
    keys = info["keys"]
    if info["header"] is not None:
        amount = _col(keys, "txnAmt")
        staged = _execute(f"SELECT coalesce(sum({amount}::bigint), 0) FROM {STAGE} s WHERE s.c0 IS NOT NULL")[0][0]
        total = int(staged) + info["total"]
        if tuple(info["header"]) != (total, info["count"]):
            raise FileRejected(
                "totals_mismatch",
                {
                    "header_amount": info["header"][0],
                    "header_count": info["header"][1],
                    "amount": total,
                    "count": info["count"],
                },
            )
    if info["count"] == 0:
        raise FileRejected("no_lines")
    _execute(f"ANALYZE {STAGE}")
    _execute(f"ANALYZE {PARSED}")
    ctx.state["refund_bulk"] = info
    progress()


# --- checks -------------------------------------------------------------------------------------------


_FREE_KEYS = ("reqReserved", "reason")


def _candidates_sql(keys: list, yuan: bool, ranged: bool = False) -> str:
    """Every parsed line: the staged ones (their fields as SQL reads them) and the parser's (``pdata``:
    the data the parser gave them)."""

    def text(key: str) -> str:
        c = _col(keys, key)
        return c if c else "''"

    free = [f"NULLIF(btrim({_col(keys, k)}, ' '), '') AS {k.lower()}" if k in keys else f"NULL AS {k.lower()}"
            for k in _FREE_KEYS]  # fmt: skip
    return (
        f"SELECT s.line_no, {_col(keys, 'orderId')} AS order_id, {_amount_sql(keys, yuan)} AS amount, "
        f"{text('origQryId')} AS qid, {text('origOrderId')} AS oorder, {text('origTxnTime')} AS otime, "
        f"{text('merId')} AS mer_id, {', '.join(free)}, NULL::jsonb AS pdata "
        f"FROM {STAGE} s WHERE s.c0 IS NOT NULL {'AND s.line_no BETWEEN %(_from)s AND %(_to)s ' if ranged else ''}"
        "UNION ALL SELECT p.line_no, p.order_id, p.amount, coalesce(p.data->>'origQryId', ''), "
        "coalesce(p.data->>'origOrderId', ''), coalesce(p.data->>'origTxnTime', ''), coalesce(p.data->>'merId', ''), "
        f"NULL, NULL, p.data FROM {PARSED} p WHERE p.error_code IS NULL"
        f"{' AND p.line_no BETWEEN %(_from)s AND %(_to)s' if ranged else ''}"
    )


def _data_sql(keys: list, valid: str, void: str) -> str:
    """A line's ``data``: the parser's for the lines it read, else built from the staged fields (the
    keys ``formats.parse.line_data`` keeps); a valid line adds its original and its kind (and, named by
    order id and time, the query id found). ``jsonb_strip_nulls`` only where a field may be empty."""
    pairs, optional = [], False
    for key, column in (("origQryId", "qid"), ("origOrderId", "oorder"), ("origTxnTime", "otime"),
                        ("merId", "mer_id")):  # fmt: skip
        if key in keys:
            pairs.append(f"'{key}', NULLIF(c.{column}, '')")
            optional = optional or key != "origQryId" or ("origOrderId" in keys and "origTxnTime" in keys)
    for key in _FREE_KEYS:
        if key in keys:
            pairs.append(f"'{key}', c.{key.lower()}")
            optional = True
    kind = f"'txnType', CASE WHEN {void} THEN '31' ELSE '04' END"
    by_qid = f"'origId', c.orig_id, {kind}"
    by_order = f"'origId', c.orig_id, 'origQryIdResolved', coalesce(c.o_qid, ''), {kind}"

    def built(*extra: str) -> str:
        obj = f"jsonb_build_object({', '.join(pairs + list(extra))})"
        return f"jsonb_strip_nulls({obj})" if optional else obj

    orig = f"CASE WHEN c.qid <> '' THEN {built(by_qid)} ELSE {built(by_order)} END"
    parsed = (
        f"c.pdata || CASE WHEN c.qid <> '' THEN jsonb_build_object({by_qid}) ELSE jsonb_build_object({by_order}) END"
    )
    return (
        f"CASE WHEN c.pdata IS NOT NULL THEN CASE WHEN {valid} THEN {parsed} ELSE c.pdata END "
        f"WHEN {valid} THEN {orig} ELSE {built()} END"
    )


def _check_sql(keys: list, yuan: bool, repeated: bool, *, table: str = CHECKED, ranged: bool = False) -> str:
    """The parsed lines with the first error the ledger checks find (``code``, ``error_column``,
    ``error_params``; NULL when the line goes on to the cap) and their original, in file order (hash
    joins on the lines as they come)."""
    ledger, refunds, held = Transaction._meta.db_table, Refund._meta.db_table, BatchOrderId._meta.db_table
    given = (
        "make_timestamp(substr(e.otime, 1, 4)::int, substr(e.otime, 5, 2)::int, substr(e.otime, 7, 2)::int, "
        "substr(e.otime, 9, 2)::int, substr(e.otime, 11, 2)::int, substr(e.otime, 13, 2)::int) "
        "AT TIME ZONE 'Asia/Shanghai'"
    )

    by_qid, by_order = "origQryId" in keys, "origOrderId" in keys and "origTxnTime" in keys

    def o(field: str) -> str:
        if by_qid and by_order:
            return f"CASE WHEN d.qid <> '' THEN oq.{field} ELSE oo.{field} END"
        return f"oq.{field}" if by_qid else f"oo.{field}"

    joins = ""  # the original, by query id or by order id (only the ways the file's columns allow)
    if by_qid:
        joins += (
            f"LEFT JOIN {ledger} oq ON d.first_line = d.line_no AND d.qid <> '' "
            "AND oq.query_id = d.qid AND oq.merchant_id = %(merchant)s "
        )
    if by_order:
        joins += (
            f"LEFT JOIN {ledger} oo ON d.first_line = d.line_no AND d.qid = '' "
            "AND oo.merchant_id = %(merchant)s AND oo.order_id = d.oorder "
        )

    mismatch = f"(e.otime <> '' AND abs(extract(epoch FROM e.txn_time - {given})) >= 1)"
    return (
        f"CREATE UNLOGGED TABLE {table} AS "
        f"WITH c AS NOT MATERIALIZED ({_candidates_sql(keys, yuan, ranged)}), "
        # order ids used by a single refund or a ledger row of the merchant
        f"used AS (SELECT x.order_id::text AS order_id FROM {refunds} x WHERE x.merchant_id = %(merchant)s "
        f"UNION SELECT x.order_id::text FROM {ledger} x WHERE x.merchant_id = %(merchant)s), "
        "u AS NOT MATERIALIZED (SELECT c.*, CASE "
        "WHEN c.mer_id <> '' AND c.mer_id <> %(code)s THEN 1 WHEN us.order_id IS NOT NULL THEN 2 "
        "WHEN h.batch_id IS NOT NULL THEN 3 END AS pre, h.batch_id AS h_batch, h.line_no AS h_line "
        "FROM c LEFT JOIN used us ON us.order_id = c.order_id "
        f"LEFT JOIN {held} h ON h.family = %(family)s AND h.merchant_id = %(merchant)s "
        "AND h.order_id = c.order_id AND h.batch_id <> %(batch)s), "
        f"{_first_line_sql(repeated)}"
        "e AS (SELECT d.line_no, d.order_id, d.amount, d.pdata, d.mer_id, d.otime, d.qid, d.oorder, d.reqreserved, "
        "d.reason, d.pre, d.h_batch, d.h_line, "
        f"d.first_line, {o('id')} AS orig_id, {o('query_id')} AS o_qid, {o('order_id')} AS o_order, "
        f"{o('txn_time')} AS txn_time, {o('txn_type')} AS txn_type, {o('status')} AS o_status, "
        f"{o('amount')} AS o_amount, {o('refunded_amount')} AS o_refunded, {o('settle_date')} AS settle_date, "
        f"CASE WHEN d.qid <> '' THEN 'origQryId' ELSE 'origOrderId' END AS orig_column FROM d {joins}) "
        "SELECT e.line_no, e.order_id, e.amount, e.pdata, e.qid, e.oorder, e.otime, e.mer_id, e.reqreserved, e.reason, "
        "e.orig_id, e.o_qid, e.o_amount, e.o_refunded, e.settle_date, "
        "CASE WHEN e.pre = 1 THEN 'merid_mismatch' WHEN e.pre = 2 THEN 'order_id_used' "
        "WHEN e.pre = 3 THEN 'duplicate_order_id' WHEN e.first_line <> e.line_no THEN 'duplicate_order_id_in_file' "
        f"WHEN e.orig_id IS NULL THEN 'orig_not_found' WHEN {mismatch} THEN 'orig_time_mismatch' "
        "WHEN NOT (e.txn_type = ANY(%(types)s)) THEN 'orig_not_payment' "
        "WHEN e.o_status <> %(success)s THEN 'orig_not_success' "
        "WHEN e.txn_time < %(cutoff)s THEN 'window_expired' END AS code, "
        "CASE WHEN e.pre = 1 THEN 'merId' WHEN e.pre IN (2, 3) OR e.first_line <> e.line_no THEN 'orderId' "
        f"WHEN e.orig_id IS NOT NULL AND {mismatch} THEN 'origTxnTime' ELSE e.orig_column END AS error_column, "
        "CASE WHEN e.pre = 1 THEN jsonb_build_object('value', e.mer_id, 'merchant', %(code)s::text) "
        "WHEN e.pre = 2 THEN jsonb_build_object('order_id', e.order_id) "
        "WHEN e.pre = 3 THEN jsonb_build_object('order_id', e.order_id, 'batch_id', e.h_batch, 'line_no', e.h_line) "
        "WHEN e.first_line <> e.line_no THEN jsonb_build_object('order_id', e.order_id, 'line_no', e.first_line) "
        "WHEN e.orig_id IS NULL THEN NULL "
        f"WHEN {mismatch} THEN jsonb_build_object('order_id', e.o_order, 'value', e.otime) "
        "WHEN e.txn_time < %(cutoff)s AND e.txn_type = ANY(%(types)s) AND e.o_status = %(success)s "
        "THEN jsonb_build_object('days', %(window)s::int) END AS error_params FROM e"
    )


def _first_line_sql(repeated: bool) -> str:
    """CTE ``d``: the lines with ``first_line``, the first line naming their order id among those that
    passed the checks before it (NULL for the others). Only the order ids staging saw on several lines
    (``%(repeated)s``, usually none) are looked at."""
    if not repeated:
        return "d AS (SELECT u.*, CASE WHEN u.pre IS NULL THEN u.line_no END AS first_line FROM u), "
    return (
        "dup AS (SELECT order_id, min(line_no) AS first_line FROM u WHERE pre IS NULL "
        "AND order_id = ANY(%(repeated)s::text[]) GROUP BY order_id), "
        "d AS (SELECT u.*, CASE WHEN u.pre IS NULL THEN coalesce(dup.first_line, u.line_no) END AS first_line "
        "FROM u LEFT JOIN dup ON dup.order_id = u.order_id), "
    )


def _held_sql() -> str:
    """Fen held per original (as text, the lines' ``ref``) by single refunds and by other live refund
    batches' lines, not yet in the ledger as a success (``selectors.reserved_by_*``)."""
    ledger, refunds = Transaction._meta.db_table, Refund._meta.db_table
    lines, batches = BatchLine._meta.db_table, Batch._meta.db_table
    in_ledger = (
        f"EXISTS (SELECT 1 FROM {ledger} t WHERE t.merchant_id = {{a}}.merchant_id AND t.order_id = {{a}}.order_id "
        "AND t.status = %(success)s)"
    )
    return (
        f"CREATE UNLOGGED TABLE {HELD} AS SELECT ref, sum(amount)::bigint AS amount FROM ("
        f"SELECT x.original_id::text AS ref, x.amount FROM {refunds} x "
        f"WHERE x.original_id IN (SELECT orig_id FROM {CHECKED} WHERE code IS NULL) "
        f"AND x.status = ANY(%(reserving)s) AND NOT {in_ledger.format(a='x')} "
        f"UNION ALL SELECT l.ref, l.amount FROM {lines} l JOIN {batches} b ON b.id = l.batch_id "
        f"WHERE l.ref IN (SELECT orig_id::text FROM {CHECKED} WHERE code IS NULL) AND b.kind = %(kind)s "
        "AND b.id <> %(batch)s AND NOT (b.status = ANY(%(released)s)) AND l.status = ANY(%(reserving_lines)s) "
        f"AND NOT {in_ledger.format(a='l')}) h GROUP BY ref"
    )


def _allocate(params: dict) -> bool:
    """The originals whose file lines ask for more than is refundable: their lines are allocated in
    file order (a line that does not fit is refused and takes nothing); True when there were any."""
    over = _execute(
        "SELECT a.orig_id, a.left_now - coalesce(h.amount, 0) FROM (SELECT c.orig_id, "
        "max(c.o_amount - c.o_refunded) AS left_now, "
        f"sum(c.amount) AS asked FROM {CHECKED} c WHERE c.code IS NULL GROUP BY c.orig_id) a "
        f"LEFT JOIN {HELD} h ON h.ref = a.orig_id::text WHERE a.asked > a.left_now - coalesce(h.amount, 0)"
    )
    if not over:
        return False
    remaining = dict(over)
    _execute(f"CREATE UNLOGGED TABLE {CAP} (line_no bigint PRIMARY KEY, before bigint, params jsonb)")
    sql = f"COPY {CAP} (line_no, before, params) FROM STDIN"
    raw = connection.connection
    with connection.chunked_cursor() as cursor:
        cursor.execute(
            f"SELECT line_no, orig_id, amount FROM {CHECKED} WHERE code IS NULL AND orig_id = ANY(%s) ORDER BY line_no",
            [list(remaining)],
        )
        while rows := cursor.fetchmany(5000):
            out = []
            for line_no, orig_id, amount in rows:
                left_now = remaining[orig_id]
                if amount > left_now:
                    params_ = {"amount": format_yuan(amount), "refundable": format_yuan(max(0, left_now))}
                    out.append((line_no, None, _json(params_)))
                else:
                    out.append((line_no, left_now, None))
                    remaining[orig_id] = left_now - amount
            with raw.cursor() as copy_cursor, copy_cursor.copy(sql) as copy:
                for row in out:
                    copy.write_row(row)
    _execute(f"ANALYZE {CAP}")
    return True


def _lines(batch, ctx) -> tuple[str, dict]:
    from .batch import _batch_merchant

    info = ctx.state["refund_bulk"]
    merchant = _batch_merchant(batch)
    now = timezone.now()
    window = merchant_refund_window_days(merchant)
    params = {
        "code": merchant.code,
        "merchant": merchant.pk,
        "batch_merchant": batch.merchant_id,
        "family": BATCH_KIND,
        "kind": BATCH_KIND,
        "batch": batch.pk,
        "types": sorted(REFUNDABLE_TYPES),
        "success": TxnStatus.SUCCESS.value,
        "cutoff": now - timedelta(days=window),
        "window": window,
        "today": current_settlement_day(now),
        "reserving": sorted(RESERVING),
        "reserving_lines": sorted(RESERVING_LINES),
        "released": sorted(RELEASED),
    }
    for sql in _CHECK_SETTINGS:
        _execute(sql)
    params["repeated"] = info["repeated"]
    span = (info["first_line"], info["first_line"] + info["count"] + len(info["blank"]) - 1)
    split = halves(span) if ctx.side_connections and not info["repeated"] else None
    if split is not None:
        _check_in_halves(ctx, info, params, split)
    else:
        _execute(_check_sql(info["keys"], info["yuan"], bool(info["repeated"])), params)
    _execute(_held_sql(), params)
    _execute(f"ANALYZE {HELD}")
    capped = _allocate(params)
    ctx.line_span = span
    before = "f.before" if capped else "NULL::bigint"
    fits = "f.params IS NULL" if capped else "true"
    # Schema-qualified: the pipeline may run this on a second connection (its search path is its own).
    schema = ctx.state["refund_bulk_schema"]
    join = f"LEFT JOIN {schema}.{CAP} f ON f.line_no = c.line_no " if capped else ""
    valid = f"(c.code IS NULL AND {fits})"
    left = "c.o_amount - c.o_refunded - coalesce(h.amount, 0)"
    void = f"coalesce({before}, {left}) = c.o_amount AND c.amount = c.o_amount AND c.settle_date = %(today)s::date"
    sql = (
        f"SELECT c.line_no, c.order_id, CASE WHEN {valid} THEN %(merchant)s ELSE %(batch_merchant)s END::bigint "
        f"AS merchant_id, c.amount, CASE WHEN {valid} THEN c.orig_id::text ELSE '' END AS ref, "
        f"{_data_sql(info['keys'], valid, void)} AS data, "
        f"CASE WHEN c.code IS NOT NULL THEN c.code WHEN NOT {fits} THEN 'amount_exceeds' END AS error_code, "
        f"CASE WHEN c.code IS NOT NULL THEN c.error_column WHEN NOT {fits} THEN 'txnAmt' END AS error_column, "
        f"CASE WHEN c.code IS NOT NULL THEN c.error_params WHEN NOT {fits} THEN {'f.params' if capped else 'NULL'} "
        "END AS error_params "
        f"FROM {schema}.{CHECKED} c LEFT JOIN {schema}.{HELD} h ON h.ref = c.orig_id::text {join}"
        "UNION ALL SELECT p.line_no, p.order_id, %(batch_merchant)s::bigint, p.amount, '', p.data, p.error_code, "
        f"p.error_column, p.error_params FROM {schema}.{PARSED} p WHERE p.error_code IS NOT NULL"
    )
    return sql, params


# The checks' transaction: sorts and hashes over the whole file in memory; no JIT (its compile time dwarfs
# these plans).
_CHECK_SETTINGS = ("SET LOCAL work_mem = '16MB'", "SET LOCAL jit = off")


def _check_in_halves(ctx, info: dict, params: dict, split: tuple[int, int, int]) -> None:
    """The checks of a large file by two connections at once, each a half of the lines (the second on a
    ``SideConnection``, committed before the first half ends), joined by a view under the usual name. A
    line's checks do not depend on the other lines' but for order ids repeated in the file, which this
    is not used for."""
    start, middle, last = split
    first, second = f"{CHECKED}_1", f"{CHECKED}_2"
    schema = ctx.state["refund_bulk_schema"]

    def second_half(cursor) -> None:
        for sql in (f"SET LOCAL search_path TO {schema}, public", *_CHECK_SETTINGS):
            cursor.execute(sql)
        cursor.execute(
            _check_sql(info["keys"], info["yuan"], False, table=second, ranged=True),
            dict(params, _from=middle, _to=last),
        )

    side = SideConnection(second_half)
    try:
        _execute(
            _check_sql(info["keys"], info["yuan"], False, table=first, ranged=True),
            dict(params, _from=start, _to=middle - 1),
        )
    finally:
        side.result()
    _execute(f"CREATE VIEW {CHECKED} AS SELECT * FROM {first} UNION ALL SELECT * FROM {second}")


def _open_schema(batch, ctx) -> None:
    """This run's schema, first on the connection's search path: the staging and check tables are
    created there (unlogged: no WAL, and readable by a second connection once committed)."""
    schema = f"{SCHEMA_PREFIX}{int(batch.pk)}_{uuid.uuid4().hex[:12]}"
    _execute(f"CREATE SCHEMA {schema}")
    ctx.state["refund_bulk_schema"] = schema
    _execute(f"SET search_path TO {schema}, public")


def _cleanup(ctx) -> None:
    """Drop this run's schema and restore the search path; once the batch has left ``validating``, the
    schemas its earlier runs left behind (a killed worker) go too."""
    schema = ctx.state.get("refund_bulk_schema")
    if schema is None:
        return
    _execute("RESET search_path")
    _execute(f"DROP SCHEMA IF EXISTS {connection.ops.quote_name(schema)} CASCADE")
    sweep_staging(batch_id=ctx.batch.pk)


def sweep_staging(*, batch_id: int | None = None) -> int:
    """Drop the staging schemas that a killed run left behind (of ``batch_id`` only, when given), once
    their batch is no longer ``validating`` (a batch still validating may have a run going on).
    PostgreSQL only; returns how many were dropped (the hourly ``refunds.sweep_staging`` job, and a run's
    cleanup for its own batch)."""
    if connection.vendor != "postgresql":
        return 0
    prefix = SCHEMA_PREFIX if batch_id is None else f"{SCHEMA_PREFIX}{int(batch_id)}_"
    names = _execute(
        "SELECT n.nspname FROM pg_namespace n WHERE starts_with(n.nspname, %s) AND NOT EXISTS (SELECT 1 "
        f"FROM {Batch._meta.db_table} b WHERE b.status = %s AND starts_with(n.nspname, %s || b.id || '_'))",
        [prefix, BatchStatus.VALIDATING, SCHEMA_PREFIX],
    )
    for (name,) in names:
        _execute(f"DROP SCHEMA IF EXISTS {connection.ops.quote_name(name)} CASCADE")
    return len(names)


def _applies_to(batch) -> bool:
    """These checks are those of one merchant (its ledger, window and order ids): an acquirer's file for
    several merchants is validated in chunks, merchant by merchant (``batch.refund_validate_chunk``)."""
    from .batch import is_multi_merchant

    return not is_multi_merchant(batch)


BULK = BulkValidation(stage=_stage, lines=_lines, cleanup=_cleanup, applies_to=_applies_to)
