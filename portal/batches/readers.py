"""Streaming readers for parsers: text lines with encoding detection, xlsx rows in read-only mode.

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


def iter_raw_lines(stream: IO[bytes]) -> Iterator[tuple[int, bytes | None]]:
    """``(line_no, bytes)`` for each line (LF, CRLF or CR alone), numbered from 1, without the line
    ending. A line over ``MAX_LINE_BYTES`` is yielded as ``None`` (its bytes skipped), so a huge
    field never sits in memory. A final empty line is not yielded."""
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
        buf = buf.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        parts = buf.split(b"\n")
        buf = parts.pop()
        for part in parts:
            line_no += 1
            if skipping:
                skipping = False
                yield line_no, None
            else:
                yield line_no, part
        if tail_cr:
            buf += b"\r"
        if len(buf) > MAX_LINE_BYTES:
            skipping = True
            buf = b""
    if buf.endswith(b"\r"):
        buf = buf[:-1]
    if buf or skipping:
        line_no += 1
        yield line_no, None if skipping else buf


def iter_text_lines(stream: IO[bytes]) -> Iterator[tuple[int, str | None]]:
    """``(line_no, text)`` for each line, decoded with the encoding detected on the first 256 KiB;
    ``None`` for a line that is too long or does not decode (the parser reports it)."""
    head = stream.peek(SNIFF)[:SNIFF] if hasattr(stream, "peek") else b""
    if not head and stream.seekable():
        head = stream.read(SNIFF)
        stream.seek(0)
    encoding = detect_encoding(head)
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
    """``(row_no, values)`` of the first sheet, in read-only mode (rows stream, never the whole
    sheet). The stream must have passed ``uploads.check_xlsx_inflated`` (the pipeline does so).
    openpyxl parses with defusedxml, so entity expansion is refused."""
    from openpyxl import load_workbook

    workbook = load_workbook(stream, read_only=True, data_only=False, keep_links=False)
    try:
        sheet = workbook.worksheets[0]
        yield from enumerate(sheet.iter_rows(values_only=True), start=1)
    finally:
        workbook.close()
