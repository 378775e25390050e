"""A tiny "demo" batch kind (``orderId|amount`` text, or two xlsx columns) and helpers."""

from __future__ import annotations

import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from openpyxl import Workbook

from portal.batches.readers import iter_text_lines, iter_xlsx_rows
from portal.batches.registry import (
    BatchKind,
    FileError,
    LineError,
    LineResult,
    ParsedLine,
    register_batch_kind,
    unregister_batch_kind,
)

CALLS: list[str] = []
RECOVERED: list[str] = []


def _line(line_no: int, cells) -> ParsedLine | LineError | FileError:
    if len(cells) == 1 and cells[0] == "FILEERR":
        return FileError("demo_bad_file")
    if len(cells) != 2:
        return LineError(line_no, "demo_columns", params={"count": len(cells)})
    order_id, amount = (str(c if c is not None else "").strip() for c in cells)
    if not amount.isdigit():
        return LineError(line_no, "demo_amount", column="amount", order_id=order_id)
    return ParsedLine(line_no, order_id=order_id, amount=int(amount), data={"orderId": order_id, "note": "x"})


def demo_parse(stream, fmt, context):
    if fmt == "xlsx":
        for row_no, row in iter_xlsx_rows(stream):
            yield _line(row_no, list(row))
        return
    for line_no, text in iter_text_lines(stream):
        if text is None:
            yield LineError(line_no, "demo_unreadable")
            continue
        yield _line(line_no, text.split("|"))


def demo_validate(batch, lines, context):
    context.state["chunks"] = context.state.get("chunks", 0) + 1
    return [LineError(p.line_no, "demo_too_big", column="amount") for p in lines if p.amount > 1_000_000]


def demo_process(batch, line):
    CALLS.append(line.order_id)
    if line.amount % 100 == 13:
        return LineResult("failed", {"respCode": "61", "respMsg": "declined"})
    return LineResult("succeeded", {"respCode": "00", "queryId": f"Q{line.order_id}"})


def demo_recover(batch, line):
    RECOVERED.append(line.order_id)
    return LineResult("succeeded", {"respCode": "00", "recovered": True})


def demo_write_result(batch, fmt, lines, out):
    out.write(b"orderId|amount|status|respCode\n")
    for line in lines:
        out.write(f"{line.order_id}|{line.amount}|{line.status}|{line.result.get('respCode', '')}\n".encode())


DEMO = BatchKind(
    code="demo",
    label="Demo batch",
    parse=demo_parse,
    validate_chunk=demo_validate,
    process_line=demo_process,
    recover_line=demo_recover,
    write_result=demo_write_result,
    messages={
        "demo_amount": "Amount must be digits",
        "demo_too_big": "Amount too big",
        "demo_columns": "%(count)s cols",
    },
    columns={"amount": "Amount", "orderId": "Order ID"},
    sample_columns=("note",),
    max_lines=1000,
)


@pytest.fixture(autouse=True)
def demo_kind(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.CELERY_TASK_ALWAYS_EAGER = True
    settings.BATCH_CHUNK_SIZE = 3
    settings.BATCH_VALIDATE_CHUNK = 4
    CALLS.clear()
    RECOVERED.clear()
    register_batch_kind(DEMO)
    yield DEMO
    unregister_batch_kind("demo")


def text_file(lines: list[str], name: str = "refunds.txt") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, ("\n".join(lines) + "\n").encode(), content_type="text/plain")


def xlsx_bytes(rows) -> bytes:
    wb = Workbook()
    ws = wb.active
    for row in rows:
        ws.append(list(row))
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def stored_files(settings) -> list:
    root = settings.MEDIA_ROOT / "batches"
    return sorted(p.name for p in root.iterdir()) if root.exists() else []
