"""Detail download (交易明细下载): CSV (UTF-8 with BOM or GBK) and XLSX of exactly a filtered set.

Headers follow the active language; amounts are yuan numbers with two decimals; cards are masked
(the ledger holds nothing else); text cells that a spreadsheet would run as a formula are
neutralised with a leading apostrophe (OWASP CSV injection).
"""

from __future__ import annotations

import csv
import tempfile
from collections.abc import Iterator
from decimal import Decimal

from django.db.models import QuerySet
from django.utils.translation import gettext as _
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell

from . import settlement
from .choices import ChannelType, TxnStatus, TxnType

EXPORT_MAX_ROWS = 50_000
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
