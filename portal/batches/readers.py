"""Streaming readers for parsers: text lines with encoding detection, xlsx rows (python-calamine).

No ORM; a parser of a kind builds on these (``for line_no, text in iter_text_lines(stream)``).
"""

from __future__ import annotations

import codecs
from collections.abc import Iterator
from typing import IO

SNIFF = 256 * 1024
MAX_LINE_BYTES = 64 * 1024


class LineTooLong(ValueError):
    """A line longer than ``MAX_LINE_BYTES`` (never buffered whole)."""


def detect_encoding(head: bytes) -> str:
    """``utf-8-sig`` with a BOM, ``utf-8`` when the sample decodes as UTF-8 (a character cut at the
    sample's end allowed), else ``gbk`` (GB18030 superset, as Chinese Excel writes it)."""
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        decoder.decode(head, final=False)
    except UnicodeDecodeError:
        return "gb18030"
    return "utf-8"


def iter_raw_blocks(stream: IO[bytes]) -> Iterator[tuple[int, bytes, bool]]:
    """The lines of ``iter_raw_lines`` a read at a time: ``(first line_no, block, skip_first)`` where
    ``block`` holds whole lines, each ending with LF (CRLF and CR alone already made LF), and
    ``skip_first`` says that the block's first line is the tail of a line over ``MAX_LINE_BYTES`` (the
    line ``iter_raw_lines`` yields as ``None``). A set-based reader checks a block at C speed instead
    of line by line; ``iter_raw_lines`` is built on it, so both cut lines the same way."""
    line_no = 0
    buf = b""
    skipping = False
    while True:
        block = stream.read(65536)
        if not block:
            break
        buf += block
        # CR alone as a line ending: normalise, keeping a trailing CR that may precede an LF.
        tail_cr = buf.endswith(b"\r")
        if tail_cr:
            buf = buf[:-1]
        if b"\r" in buf:
            buf = buf.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        cut = buf.rfind(b"\n") + 1
        if cut:
            lines = buf.count(b"\n", 0, cut)
            yield line_no + 1, buf[:cut], skipping
            skipping = False
            line_no += lines
            buf = buf[cut:]
        if tail_cr:
            buf += b"\r"
        if len(buf) > MAX_LINE_BYTES:
            skipping = True
            buf = b""
    if buf.endswith(b"\r"):
        buf = buf[:-1]
    if buf or skipping:
        yield line_no + 1, (b"" if skipping else buf) + b"\n", skipping


def iter_raw_lines(stream: IO[bytes]) -> Iterator[tuple[int, bytes | None]]:
    """``(line_no, bytes)`` for each line (LF, CRLF or CR alone), numbered from 1, without the line
    ending. A line over ``MAX_LINE_BYTES`` is yielded as ``None`` (its bytes skipped), so a huge
    field never sits in memory. A final empty line is not yielded."""
    for first, block, skip_first in iter_raw_blocks(stream):
        parts = block.split(b"\n")
        parts.pop()
        for index, part in enumerate(parts):
            yield first + index, None if (skip_first and index == 0) else part


def text_encoding(stream: IO[bytes]) -> str:
    """The encoding of a text stream, detected on its first 256 KiB (``detect_encoding``); the
    stream is left at its start."""
    head = stream.peek(SNIFF)[:SNIFF] if hasattr(stream, "peek") else b""
    if not head and stream.seekable():
        head = stream.read(SNIFF)
        stream.seek(0)
    return detect_encoding(head)


def iter_text_lines(stream: IO[bytes]) -> Iterator[tuple[int, str | None]]:
    """``(line_no, text)`` for each line, decoded with the encoding detected on the first 256 KiB;
    ``None`` for a line that is too long or does not decode (the parser reports it)."""
    encoding = text_encoding(stream)
    first = True
    for line_no, raw in iter_raw_lines(stream):
        if raw is None:
            yield line_no, None
            continue
        if first and raw.startswith(codecs.BOM_UTF8):
            raw = raw[len(codecs.BOM_UTF8) :]
        first = False
        try:
            yield line_no, raw.decode("utf-8" if encoding == "utf-8-sig" else encoding)
        except UnicodeDecodeError:
            yield line_no, None


def iter_xlsx_rows(stream: IO[bytes]) -> Iterator[tuple[int, tuple]]:
    """``(row_no, values)`` of the first sheet, numbered as in Excel (row 1 first, column A first).
    The stream must have passed ``uploads.check_xlsx_inflated`` (the pipeline does so).

    Read with python-calamine (a Rust parser: no XML entities, no external references), the fast
    path, unless a worksheet holds a formula: calamine gives a formula's cached value, while a parser
    must see the formula itself (``=...``) to refuse it, so such a workbook is read with openpyxl
    (read-only, ``data_only=False``, defusedxml). Values are those openpyxl gives: None for an empty
    cell, ``datetime`` for a date, ``int`` for a whole number."""
    calamine, rows = xlsx_sheet_rows(stream)
    if not calamine:
        yield from rows
        return
    for row_no, row in rows:
        yield row_no, calamine_values(row)


def xlsx_sheet_rows(stream: IO[bytes]) -> tuple[bool, Iterator[tuple[int, tuple]]]:
    """``(calamine, rows)``: the first sheet's ``(row_no, values)`` as ``iter_xlsx_rows`` reads them, but
    when ``calamine`` is True the values are python-calamine's own (``""`` for an empty cell, floats for
    numbers, ``date``), to be turned into ``iter_xlsx_rows``' values with ``calamine_values`` (a bulk
    reader converts only the rows it must). The leading empty columns are already padded."""
    if _has_formulas(stream):
        return False, _iter_xlsx_rows_openpyxl(stream)
    return True, _iter_xlsx_rows_calamine(stream)


def calamine_values(row: tuple) -> tuple:
    """python-calamine's values as openpyxl gives them: None for an empty cell, ``int`` for a whole
    number (below 10^15), ``datetime`` for a date."""
    from datetime import date, datetime

    values = []
    for value in row:
        kind = type(value)
        if kind is str:
            values.append(value if value else None)
        elif kind is float:
            values.append(int(value) if value.is_integer() and -1e15 < value < 1e15 else value)
        elif kind is date:
            values.append(datetime(value.year, value.month, value.day))
        else:
            values.append(value)
    return tuple(values)


_FORMULA_TAGS = (b"<f>", b"<f ", b"<f/", b":f>", b":f ", b":f/")


def _has_formulas(stream: IO[bytes]) -> bool:
    """Whether any worksheet XML holds a formula element (streamed, a little overlap per block)."""
    import zipfile

    stream.seek(0)
    try:
        with zipfile.ZipFile(stream) as zf:
            for info in zf.infolist():
                name = info.filename.lower()
                if not (name.startswith("xl/worksheets/") and name.endswith(".xml")):
                    continue
                tail = b""
                with zf.open(info) as member:
                    while block := member.read(1 << 20):
                        window = tail + block
                        if any(tag in window for tag in _FORMULA_TAGS):
                            return True
                        tail = window[-8:]
    finally:
        stream.seek(0)
    return False


def _iter_xlsx_rows_calamine(stream: IO[bytes]) -> Iterator[tuple[int, tuple]]:
    from python_calamine import CalamineWorkbook

    workbook = CalamineWorkbook.from_filelike(stream)
    try:
        sheet = workbook.get_sheet_by_index(0)
        pad = ("",) * (sheet.start[1] if sheet.start else 0)
        if pad:
            for row_no, row in enumerate(sheet.iter_rows(), start=1):
                yield row_no, pad + tuple(row)
        else:
            yield from enumerate(sheet.iter_rows(), start=1)
    finally:
        workbook.close()


def _iter_xlsx_rows_openpyxl(stream: IO[bytes]) -> Iterator[tuple[int, tuple]]:
    from openpyxl import load_workbook

    workbook = load_workbook(stream, read_only=True, data_only=False, keep_links=False)
    try:
        sheet = workbook.worksheets[0]
        yield from enumerate(sheet.iter_rows(values_only=True), start=1)
    finally:
        workbook.close()
