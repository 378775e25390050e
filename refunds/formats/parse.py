"""Parsers of batch refund files: text (ACP batch layout, fen) and Excel (.xlsx, yuan).

They yield, in file order, ``ParsedLine`` / ``LineError`` / ``FileError`` (the pipeline's
dataclasses); they never hold the file's lines in memory and never raise on hostile input
(an unexpected problem of a line is a ``LineError``, of the file a ``FileError``).

Text: line 1 ``version|totalAmt|totalQty|reqReserved1|reqReserved2``; line 2 the title line naming
the columns (ACP keys or their Chinese names), then one refund per line, ``|``-separated, amounts
in fen. The header totals must equal the detail lines (a ``FileError`` at the end otherwise).
Excel: the first sheet, a header row of column names, then one refund per row, amounts in yuan.
"""

from __future__ import annotations

from collections.abc import Iterator

from portal.batches.readers import iter_text_lines, iter_xlsx_rows
from portal.batches.registry import FileError, LineError, ParsedLine

from .columns import FieldError, build_line, column_key

REQUIRED = ("orderId", "txnAmt")
MAX_COLUMNS = 32


def _title(names, *, row_no: int) -> list[str | None] | FileError:
    """Canonical keys of a title / header row, or a FileError naming the problem."""
    keys = []
    for position, name in enumerate(names, start=1):
        if name is None or str(name).strip() == "":
            keys.append(None)
            continue
        key = column_key(name)
        if key is None:
            return FileError("unknown_column", {"name": str(name)[:40], "position": position, "line": row_no})
        if key in keys:
            return FileError("duplicate_column", {"name": str(name)[:40], "line": row_no})
        keys.append(key)
    missing = [k for k in REQUIRED if k not in keys]
    if missing:
        return FileError("missing_column", {"name": missing[0], "line": row_no})
    if "origQryId" not in keys and not ("origOrderId" in keys and "origTxnTime" in keys):
        return FileError("missing_orig_column", {"line": row_no})
    return keys


def _line(line_no: int, keys: list, values, *, yuan: bool) -> ParsedLine | LineError:
    values = list(values)
    # Trailing empty cells (a final "|" or empty Excel cells) do not count.
    while len(values) > len(keys) and (values[-1] is None or str(values[-1]).strip() == ""):
        values.pop()
    short = len(values) < len(keys) and any(k is not None for k in keys[len(values) :])
    if len(values) > len(keys) or (short and not yuan):
        return LineError(line_no, "column_count", params={"found": len(values), "expected": len(keys)})
    # Excel leaves trailing empty cells out: a missing cell is an empty one.
    values += [None] * (len(keys) - len(values))
    cells = {key: value for key, value in zip(keys, values, strict=False) if key is not None}
    raw_order = cells.get("orderId")
    order_hint = raw_order.strip()[:32] if isinstance(raw_order, str) else ""
    try:
        order_id, amount, data = build_line(cells, yuan=yuan)
    except FieldError as exc:
        return LineError(line_no, exc.code, column=exc.column, params=exc.params, order_id=order_hint)
    return ParsedLine(line_no, order_id=order_id, amount=amount, data=data)


def parse_text(stream) -> Iterator[ParsedLine | LineError | FileError]:
    header = None
    keys: list | None = None
    amount_at: int | None = None
    count = 0
    total = 0
    for line_no, text in iter_text_lines(stream):
        if header is None:
            header = text_header(text)
            if isinstance(header, FileError):
                yield header
                return
            continue
        if keys is None:
            title = text_title(text, line_no)
            if isinstance(title, FileError):
                yield title
                return
            keys = title
            amount_at = keys.index("txnAmt") if "txnAmt" in keys else None
            continue
        if text is None:
            count += 1
            yield LineError(line_no, "line_unreadable")
            continue
        if not text.strip():
            continue
        count += 1
        values = text.split("|")
        item = _line(line_no, keys, values, yuan=False)
        total += text_amount(values, amount_at)
        yield item
    if header is None:
        yield FileError("header_invalid", {})
        return
    if keys is None:
        yield FileError("title_invalid", {})
        return
    if header != (total, count):
        yield FileError(
            "totals_mismatch",
            {"header_amount": header[0], "header_count": header[1], "amount": total, "count": count},
        )


def text_header(text: str | None) -> tuple[int, int] | FileError:
    """Line 1 of a text file: ``(total fen, line count)`` or ``header_invalid``."""
    if text is None:
        return FileError("header_invalid", {})
    parts = [p.strip() for p in text.split("|")]
    if len(parts) < 3 or not _digits(parts[1]) or not _digits(parts[2]) or len(parts[1]) > 15:
        return FileError("header_invalid", {})
    return int(parts[1]), int(parts[2])


def text_title(text: str | None, line_no: int) -> list[str | None] | FileError:
    """Line 2 of a text file: the column keys, or the FileError naming the problem."""
    if text is None:
        return FileError("title_invalid", {})
    names = text.split("|")
    if len(names) > MAX_COLUMNS:
        return FileError("title_invalid", {})
    return _title(names, row_no=line_no)


def text_amount(values: list[str], amount_at: int | None) -> int:
    """What a detail line adds to the file's total for the header check: its amount field when it is
    at most 15 ASCII digits (whatever else is wrong with the line), else 0."""
    if amount_at is not None and amount_at < len(values):
        amount_text = values[amount_at].strip()
        if _digits(amount_text) and len(amount_text) <= 15:
            return int(amount_text)
    return 0


# Parsed columns a batch line does not keep in ``data``: its own columns hold them (``order_id``,
# ``amount``) or they never vary (the currency is always 156).
NOT_IN_LINE_DATA = ("orderId", "txnAmt", "currencyCode")


def line_data(data: dict) -> dict:
    """The parsed columns a batch line keeps in ``data`` (what the result file adds back)."""
    for key in NOT_IN_LINE_DATA:
        data.pop(key, None)
    return data


def parse_line(line_no: int, keys: list, values, *, yuan: bool) -> ParsedLine | LineError:
    """One detail line (text fields split on ``|``, or a row's cells) against the title's keys."""
    return _line(line_no, keys, values, yuan=yuan)


def xlsx_title(row: tuple, row_no: int) -> list[str | None] | FileError:
    """The header row of a workbook (its first non-empty row): the column keys, or the FileError."""
    if len(row) > 200:
        row = row[:200]
    while row and (row[-1] is None or str(row[-1]).strip() == ""):
        row = row[:-1]
    if len(row) > MAX_COLUMNS:
        return FileError("title_invalid", {})
    if any(isinstance(v, str) and v.startswith("=") for v in row):
        return FileError("title_invalid", {})
    return _title(row, row_no=row_no)


def _digits(text: str) -> bool:
    """ASCII digits only (``str.isdigit`` also accepts e.g. ``¹``, which ``int`` refuses)."""
    return text.isascii() and text.isdigit()


def parse_xlsx(stream) -> Iterator[ParsedLine | LineError | FileError]:
    keys: list | None = None
    for row_no, row in iter_xlsx_rows(stream):
        if keys is None:
            if all(v is None or str(v).strip() == "" for v in row):
                continue
            title = xlsx_title(row, row_no)
            if isinstance(title, FileError):
                yield title
                return
            keys = title
            continue
        if all(v is None or (isinstance(v, str) and not v.strip()) for v in row):
            continue
        yield _line(row_no, keys, row, yuan=True)
    if keys is None:
        yield FileError("title_invalid", {})


def parse(stream, fmt: str) -> Iterator[ParsedLine | LineError | FileError]:
    """Parse a batch refund file of format ``text`` or ``xlsx``."""
    if fmt == "xlsx":
        try:
            yield from parse_xlsx(stream)
        except Exception as exc:  # not a readable workbook (bad zip, bad XML, entities refused...)
            yield FileError("file_unreadable", {"detail": type(exc).__name__})
        return
    yield from parse_text(stream)
