"""The audit log as CSV, safe to open in a spreadsheet.

A cell that starts with ``= + - @``, a tab, a carriage return or a NUL could be read as a
formula (CSV injection, ASVS 5.0 1.2.10); such a cell is prefixed with a single quote.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r", "\0")

# A stable, machine-readable header: the same in both languages so that scripts can rely on it.
HEADER = (
    "sequence",
    "time UTC",
    "time Beijing",
    "actor",
    "organisation code",
    "action",
    "object type",
    "object id",
    "outcome",
    "ip",
    "user agent",
    "request id",
    "details json",
    "hash",
)

BEIJING = ZoneInfo("Asia/Shanghai")
UTC = ZoneInfo("UTC")


@dataclass(frozen=True)
class ExportRow:
    sequence: int
    occurred_at: datetime
    actor: str
    organisation_code: str
    action: str
    object_type: str
    object_id: str
    outcome: str
    ip: str
    user_agent: str
    request_id: str
    details: dict
    hash: str


def neutralise(value: object) -> str:
    """The cell as text, with a leading quote when a spreadsheet could take it for a formula."""
    text = "" if value is None else str(value)
    if text.startswith(FORMULA_TRIGGERS):
        return "'" + text
    return text


def row_cells(row: ExportRow) -> list[str]:
    cells = [
        row.sequence,
        row.occurred_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f"),
        row.occurred_at.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M:%S.%f"),
        row.actor,
        row.organisation_code,
        row.action,
        row.object_type,
        row.object_id,
        row.outcome,
        row.ip,
        row.user_agent,
        row.request_id,
        json.dumps(row.details, ensure_ascii=False, sort_keys=True),
        row.hash,
    ]
    return [neutralise(c) for c in cells]


class _Line:
    """A file-like object whose write returns the line, for streaming through csv.writer."""

    def write(self, value: str) -> str:
        return value


def csv_lines(rows: Iterable[ExportRow], *, bom: bool = True) -> Iterator[str]:
    """The header and one CSV line per row, lazily. A UTF-8 BOM first lets Excel read Chinese."""
    writer = csv.writer(_Line())
    first = writer.writerow(list(HEADER))
    yield ("\ufeff" + first) if bom else first
    for row in rows:
        yield writer.writerow(row_cells(row))
