"""Shared by the friendly files: deterministic XLSX and CSV writing, the time-zone note, yuan formatting."""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Iterable, Sequence
from datetime import date, datetime, time
from decimal import Decimal
from typing import BinaryIO

from django.utils.translation import gettext as _
from openpyxl import Workbook
from openpyxl.writer.excel import ExcelWriter

from payments.gateway.acp.reconfiles.archive import FIXED_DATE_TIME
from payments.money import fen_to_yuan

XLSX_CONTENT_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def yuan(fen: int) -> Decimal:
    return fen_to_yuan(fen)


def cutoff_note() -> str:
    """The line every friendly file carries: time zone and cut-off of the settlement day."""
    return _(
        "Times are Beijing time (Asia/Shanghai, UTC+8). Settlement day T runs from T-1 23:00 to T 23:00; "
        "amounts are in yuan (CNY)."
    )


def fixed_stamp(day: date) -> datetime:
    """The workbook creation time written into a file of ``day``: midnight of the day after (never the clock)."""
    return datetime.combine(day, time(0, 0))


def write_csv(out: BinaryIO, title: str, header: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
    """UTF-8 CSV with a byte-order mark (so spreadsheet programs read Chinese), note and title lines first."""
    text = io.TextIOWrapper(out, encoding="utf-8-sig", newline="", write_through=True)
    writer = csv.writer(text, lineterminator="\r\n")
    writer.writerow([title])
    writer.writerow([cutoff_note()])
    writer.writerow(header)
    for row in rows:
        writer.writerow(["" if value is None else value for value in row])
    text.flush()
    text.detach()


def save_xlsx(workbook: Workbook, out: BinaryIO, stamp: datetime) -> None:
    """Save ``workbook`` so that the same content gives the same bytes: fixed document properties and fixed zip
    member timestamps (openpyxl would otherwise write the clock into both)."""
    workbook.properties.created = stamp
    workbook.properties.modified = stamp
    workbook.properties.creator = "merchant-portal"
    workbook.properties.lastModifiedBy = "merchant-portal"
    raw = io.BytesIO()
    archive = zipfile.ZipFile(raw, "w", zipfile.ZIP_DEFLATED, allowZip64=True)
    ExcelWriter(workbook, archive).save()
    with (
        zipfile.ZipFile(io.BytesIO(raw.getvalue())) as source,
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as target,
    ):
        for info in source.infolist():
            fixed = zipfile.ZipInfo(info.filename, date_time=FIXED_DATE_TIME)
            fixed.compress_type = zipfile.ZIP_DEFLATED
            fixed.create_system = 3
            fixed.external_attr = 0o100644 << 16
            target.writestr(fixed, source.read(info.filename), compresslevel=6)


def sheet_with_note(workbook: Workbook, title: str, header: Sequence[str]):
    """The first sheet: title, the time-zone note, then the column header (row 3)."""
    sheet = workbook.active
    sheet.title = title[:31]
    sheet.append([title])
    sheet.append([cutoff_note()])
    sheet.append(list(header))
    return sheet
