"""Detail download (交易明细下载): CSV (UTF-8 with BOM or GBK) and XLSX of exactly a filtered set.

Headers follow the active language; amounts are yuan numbers with two decimals; cards are masked
(the ledger holds nothing else); text cells that a spreadsheet would run as a formula are
neutralised with a leading apostrophe (OWASP CSV injection).
"""

from __future__ import annotations

import csv
import tempfile
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path

from django.conf import settings
from django.db.models import QuerySet
from django.utils.translation import gettext as _
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell

from . import settlement
from .choices import ChannelType, TxnStatus, TxnType

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
    types = dict(TxnType.choices)
    statuses = dict(TxnStatus.choices)
    channels = dict(ChannelType.choices)
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
            str(types.get(txn_type, txn_type)),
            str(statuses.get(status, status)),
            (Decimal(amount) / 100).quantize(_TWO),
            (Decimal(refunded) / 100).quantize(_TWO),
            currency,
            card,
            str(channels.get(channel, channel)),
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
    characters GBK cannot hold become ``?``."""
    codec = CSV_ENCODINGS[encoding]
    writer = csv.writer(_Line())
    if codec == "utf-8":
        yield "\ufeff".encode()
    yield writer.writerow(headers()).encode(codec, errors="replace")
    buffer: list[str] = []
    for row in iter_rows(qs, sort):
        buffer.append(writer.writerow(row))
        if len(buffer) >= 500:
            yield "".join(buffer).encode(codec, errors="replace")
            buffer = []
    if buffer:
        yield "".join(buffer).encode(codec, errors="replace")


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
    with open(path, "wb") as out:
        for chunk in _csv_chunks(qs, encoding=encoding, sort=sort, every=every):
            if isinstance(chunk, int):
                done += chunk
                if progress is not None:
                    progress(done)
                continue
            out.write(chunk)
    return done


def _csv_chunks(qs: QuerySet, *, encoding: str, sort: str, every: int):
    """Like ``csv_stream`` but interleaves row counts (ints) after each flushed chunk."""
    writer = csv.writer(_Line())
    if encoding == "utf-8":
        yield "\ufeff".encode()
    yield writer.writerow(headers()).encode(encoding, errors="replace")
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
