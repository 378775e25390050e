"""Detail download (交易明细下载): CSV (UTF-8 with BOM or GBK) and XLSX of exactly a filtered set.

Headers follow the active language; amounts are yuan numbers with two decimals; cards are masked
(the ledger holds nothing else); text cells that a spreadsheet would run as a formula are
neutralised with a leading apostrophe (OWASP CSV injection).

On PostgreSQL the CSV rows are formatted by the database (``copy_sql``) and streamed with
``COPY ... TO STDOUT`` (within 2x of a bare ``COPY``, issue 3 §6); elsewhere ``iter_rows`` and
``csv.writer`` write them. Both paths give byte-identical files (``tests/integration/test_export_pg.py``).
"""

from __future__ import annotations

import csv
import tempfile
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path

from django.conf import settings
from django.db import connections
from django.db.models import QuerySet
from django.utils.translation import gettext as _
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell

from . import settlement
from .tables import CHANNEL_LABELS, STATUS_LABELS, TXN_TYPE_LABELS, choice_labels

# Up to this many rows a download streams at once; above it becomes a background job
# (``settings.TRANSACTIONS_EXPORT_STREAM_LIMIT`` overrides it).
EXPORT_MAX_ROWS = 50_000
# A background job writes at most this many rows (an XLSX sheet holds 1,048,576 lines).
JOB_MAX_ROWS = {"csv": 10_000_000, "xlsx": 1_048_575}
# Progress is saved every this many rows.
PROGRESS_EVERY = 5000
CHUNK = 2000
CSV_ENCODINGS = {"utf-8": "utf-8", "gbk": "gbk"}
_DANGEROUS_START = ("=", "+", "-", "@", "\t", "\r", "\n")
_TWO = Decimal("0.01")

_FIELDS = (
    "txn_time",
    "settle_date",
    "merchant__code",
    "order_id",
    "query_id",
    "txn_type",
    "status",
    "amount",
    "refunded_amount",
    "currency",
    "card_masked",
    "channel_type",
    "resp_code",
    "resp_msg",
    "orig_query_id",
    "trace_no",
    "req_reserved",
)


def headers() -> list[str]:
    """Column headers in the active language, in the order of ``_FIELDS``."""
    return [
        _("Transaction time (Beijing)"),
        _("Settlement date"),
        _("Merchant number"),
        _("Order ID"),
        _("Query ID"),
        _("Type"),
        _("Status"),
        _("Amount (yuan)"),
        _("Refunded (yuan)"),
        _("Currency"),
        _("Card"),
        _("Channel"),
        _("Response code"),
        _("Response message"),
        _("Original query ID"),
        _("Trace number"),
        _("Merchant reserved field"),
    ]


def neutralise(value: str) -> str:
    """Prefix ``'`` to text a spreadsheet would read as a formula or a control sequence."""
    if value and (value.startswith(_DANGEROUS_START) or ord(value[0]) < 0x20 or ord(value[0]) == 0x7F):
        return "'" + value
    return value


def iter_rows(qs: QuerySet, sort: str = "-txn_time") -> Iterator[list]:
    """Rows of ``qs`` as cell values: text neutralised, amounts as Decimal yuan."""
    tz = settlement.business_tz()
    types = choice_labels(TXN_TYPE_LABELS)
    statuses = choice_labels(STATUS_LABELS)
    channels = choice_labels(CHANNEL_LABELS)
    order = [sort, "-id" if sort.startswith("-") else "id"]
    for row in qs.order_by(*order).values_list(*_FIELDS).iterator(chunk_size=CHUNK):
        (txn_time, settle_date, merchant, order_id, query_id, txn_type, status, amount, refunded, currency,
         card, channel, resp_code, resp_msg, orig_query_id, trace_no, reserved) = row  # fmt: skip
        yield [
            txn_time.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S"),
            settle_date.isoformat(),
            merchant,
            neutralise(order_id),
            query_id or "",
            types.get(txn_type, txn_type),
            statuses.get(status, status),
            (Decimal(amount) / 100).quantize(_TWO),
            (Decimal(refunded) / 100).quantize(_TWO),
            currency,
            card,
            channels.get(channel, channel),
            neutralise(resp_code),
            neutralise(resp_msg),
            orig_query_id,
            trace_no,
            neutralise(reserved),
        ]


class _Line:
    """A file-like object whose write returns the line, for csv.writer in a generator."""

    def write(self, value: str) -> str:
        return value


def csv_stream(qs: QuerySet, *, encoding: str = "utf-8", sort: str = "-txn_time") -> Iterator[bytes]:
    """The CSV file in chunks of bytes. UTF-8 starts with a BOM so that Excel detects it;
    characters GBK cannot hold become ``?``. On PostgreSQL the rows come formatted from ``COPY``."""
    for chunk in _csv_chunks(qs, encoding=CSV_ENCODINGS[encoding], sort=sort, every=500):
        if not isinstance(chunk, int):
            yield chunk


def xlsx_file(qs: QuerySet, *, sort: str = "-txn_time"):
    """The XLSX workbook written in openpyxl write-only mode into a temporary file (rewound)."""
    wb = Workbook(write_only=True)
    ws = wb.create_sheet(_("Transactions"))
    ws.append(headers())
    amount_columns = (_FIELDS.index("amount"), _FIELDS.index("refunded_amount"))
    for row in iter_rows(qs, sort):
        for i in amount_columns:
            cell = WriteOnlyCell(ws, value=row[i])
            cell.number_format = "0.00"
            row[i] = cell
        ws.append(row)
    out = tempfile.TemporaryFile(suffix=".xlsx")
    wb.save(out)
    out.seek(0)
    return out


def stream_limit() -> int:
    """Rows up to which a download streams at once; more become a background job."""
    value = getattr(settings, "TRANSACTIONS_EXPORT_STREAM_LIMIT", None)
    return EXPORT_MAX_ROWS if value is None else value


def job_limit(file_format: str) -> int:
    """The most rows a background download of ``file_format`` (``csv`` / ``xlsx``) can hold."""
    return JOB_MAX_ROWS["xlsx" if file_format.startswith("xlsx") else "csv"]


def write_file(
    qs: QuerySet,
    path: Path,
    *,
    file_format: str,
    sort: str = "-txn_time",
    progress: Callable[[int], None] | None = None,
    every: int | None = None,
) -> int:
    """Write the detail download of ``qs`` to ``path`` row by row; return the number of rows.

    ``file_format`` is ``csv_utf8``, ``csv_gbk`` or ``xlsx``. Rows come from a chunked iterator
    and go straight to disk (CSV) or to openpyxl's write-only sheet (which buffers to a temporary
    file), so memory stays flat whatever the row count. ``progress(rows)`` is called every
    ``every`` rows.
    """
    done = 0
    every = every or PROGRESS_EVERY

    def tick():
        if progress is not None and done % every == 0:
            progress(done)

    if file_format == "xlsx":
        wb = Workbook(write_only=True)
        ws = wb.create_sheet(_("Transactions"))
        ws.append(headers())
        amount_columns = (_FIELDS.index("amount"), _FIELDS.index("refunded_amount"))
        for row in iter_rows(qs, sort):
            for i in amount_columns:
                cell = WriteOnlyCell(ws, value=row[i])
                cell.number_format = "0.00"
                row[i] = cell
            ws.append(row)
            done += 1
            tick()
        wb.save(str(path))
        return done
    encoding = "gbk" if file_format == "csv_gbk" else "utf-8"
    # COPY holds the connection until its last row: progress (a write on that connection) cannot be
    # saved meanwhile, so it is saved once the file is written (COPY takes seconds per million rows).
    deferred = _uses_copy(qs)
    with open(path, "wb") as out:
        for chunk in _csv_chunks(qs, encoding=encoding, sort=sort, every=every, use_copy=deferred):
            if isinstance(chunk, int):
                done += chunk
                if progress is not None and not deferred:
                    progress(done)
                continue
            out.write(chunk)
    if deferred and progress is not None:
        progress(done)
    return done


def _uses_copy(qs: QuerySet) -> bool:
    """Whether the CSV of ``qs`` is produced by PostgreSQL ``COPY`` (else by ``iter_rows``)."""
    return connections[qs.db].vendor == "postgresql"


def _csv_chunks(qs: QuerySet, *, encoding: str, sort: str, every: int, use_copy: bool | None = None):
    """The CSV file in chunks of bytes, each followed by its row count (an int).

    On PostgreSQL (``use_copy`` None) the rows are formatted by the database and streamed with
    ``COPY ... TO STDOUT`` (``_copy_chunks``); elsewhere ``iter_rows`` and ``csv.writer`` write them.
    Both give the same bytes.
    """
    writer = csv.writer(_Line())
    if encoding == "utf-8":
        yield "\ufeff".encode()
    yield writer.writerow(headers()).encode(encoding, errors="replace")
    if use_copy is None:
        use_copy = _uses_copy(qs)
    if use_copy:
        yield from _copy_chunks(qs, encoding=encoding, sort=sort)
        return
    buffer: list[str] = []
    for row in iter_rows(qs, sort):
        buffer.append(writer.writerow(row))
        if len(buffer) >= every:
            yield "".join(buffer).encode(encoding, errors="replace")
            yield len(buffer)
            buffer = []
    if buffer:
        yield "".join(buffer).encode(encoding, errors="replace")
        yield len(buffer)


# --- PostgreSQL: the rows formatted in SQL and streamed with COPY -----------------------------------------------

# COPY output is sent (or written) in chunks of about this many bytes.
COPY_CHUNK_BYTES = 512 * 1024
# Text columns a spreadsheet could run as a formula (``neutralise`` in Python).
_NEUTRALISED = frozenset({"order_id", "resp_code", "resp_msg", "req_reserved"})
_LABELLED = {"txn_type": TXN_TYPE_LABELS, "status": STATUS_LABELS, "channel_type": CHANNEL_LABELS}


def copy_sql(qs: QuerySet, sort: str = "-txn_time") -> tuple[str, list]:
    """A ``SELECT`` of the rows of ``qs`` formatted exactly as ``iter_rows`` + ``csv.writer`` format them.

    The filtered set (Django's SQL, unordered) is wrapped in a select that formats each column: times in
    the business time zone, dates ISO, amounts in yuan with two decimals, labels in the active language
    (``CASE`` over the same choice dicts), text cells neutralised like ``neutralise``. Empty text becomes
    NULL, which CSV ``COPY`` writes as an empty unquoted field as ``csv.writer`` does (an empty string
    would be written ``""``). Returns SQL with ``%s`` placeholders and its parameters.
    """
    inner_sql, inner_params = qs.order_by().values_list(*_FIELDS, "id").query.sql_with_params()
    columns = [f"c{i}" for i in range(len(_FIELDS))]
    col = dict(zip(_FIELDS, columns, strict=True))
    params: list = []
    select = []
    for name in _FIELDS:
        c = f"t.{col[name]}"
        if name == "txn_time":
            params.append(settlement.business_tz().key)
            expr = f"to_char({c} AT TIME ZONE %s, 'YYYY-MM-DD HH24:MI:SS')"
        elif name == "settle_date":
            expr = f"to_char({c}, 'YYYY-MM-DD')"
        elif name in ("amount", "refunded_amount"):
            expr = f"(({c})::numeric / 100)::numeric(22, 2)::text"
        elif name in _LABELLED:
            whens = []
            for value, label in choice_labels(_LABELLED[name]).items():
                whens.append("WHEN %s THEN %s")
                params.extend([value, label])
            expr = f"NULLIF(CASE {c} {' '.join(whens)} ELSE {c} END, '')"
        elif name in _NEUTRALISED:
            # ascii() is the code of the first character (0 for ''): control characters as well as = + - @.
            expr = (
                f"CASE WHEN {c} = '' THEN NULL "
                f"WHEN ascii({c}) < 32 OR ascii({c}) = 127 OR left({c}, 1) IN ('=', '+', '-', '@') "
                f"THEN '''' || {c} ELSE {c} END"
            )
        else:
            expr = f"NULLIF({c}::text, '')"
        select.append(expr)
    direction = "DESC" if sort.startswith("-") else "ASC"
    order = f"t.{col[sort.lstrip('-')]} {direction}, t.id {direction}"
    sql = f"SELECT {', '.join(select)} FROM ({inner_sql}) AS t({', '.join(columns)}, id) ORDER BY {order}"
    return sql, params + list(inner_params)


def _copy_rows(qs: QuerySet, sort: str) -> Iterator[bytes]:
    """The CSV rows (UTF-8) of ``qs`` from PostgreSQL ``COPY``: one COPY message per row, ending with ``\\n``."""
    import psycopg

    sql, params = copy_sql(qs, sort)
    connection = connections[qs.db]
    connection.ensure_connection()
    # Parameters merged client-side: COPY takes no bind parameters.
    with psycopg.ClientCursor(connection.connection) as cursor:
        with cursor.copy(f"COPY ({sql}) TO STDOUT WITH (FORMAT csv)", params) as copy:
            yield from copy


def _crlf(rows: list) -> bytes:
    """``rows`` (each ending with ``\\n``) joined, each terminator made ``\\r\\n`` like ``csv.writer``'s; a newline
    inside a quoted field stays as it is."""
    data = b"".join(rows)
    if data.count(b"\n") == len(rows):  # no newline inside a field: every one is a terminator
        return data.replace(b"\n", b"\r\n")
    return b"".join(bytes(row[:-1]) + b"\r\n" for row in rows)


def _copy_chunks(qs: QuerySet, *, encoding: str, sort: str):
    """``_copy_rows`` in chunks of about ``COPY_CHUNK_BYTES``, each followed by its row count; re-encoded when
    the file is GBK (``?`` for what GBK cannot hold, as in ``csv_stream``)."""
    buffer: list = []
    size = 0

    def flush() -> bytes:
        data = _crlf(buffer)
        return data if encoding == "utf-8" else data.decode("utf-8").encode(encoding, errors="replace")

    for row in _copy_rows(qs, sort):
        buffer.append(row)
        size += len(row)
        if size >= COPY_CHUNK_BYTES:
            yield flush()
            yield len(buffer)
            buffer, size = [], 0
    if buffer:
        yield flush()
        yield len(buffer)
