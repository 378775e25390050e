"""Result files (回盘) and downloadable templates of batch refund files, text and Excel (pure).

A result line carries the request columns plus ``respCode``, ``respMsg``, ``queryId``,
``settleDate``, ``traceNo`` and ``traceTime``; the text result's first line is
``version|totalAmt|totalQty|reqReserved1|reqReserved2|successAmt|successQty`` (formats.md §7.4).
A line that was refused at validation carries an empty respCode and the reason in respMsg.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import IO

from .columns import REQUEST_COLUMNS, RESULT_COLUMNS, header_name

VERSION = "5.0.0"
_DANGEROUS = ("=", "+", "-", "@", "\t", "\r", "\0")


@dataclass
class ResultRow:
    """One line of the result: the request's columns (text, amount in fen) and the outcome."""

    line_no: int
    request: dict
    amount: int
    succeeded: bool = False
    result: dict = field(default_factory=dict)


def _yuan(fen: int) -> Decimal:
    return (Decimal(int(fen)) / 100).quantize(Decimal("0.01"))


def _text_cell(value) -> str:
    # "|" and line breaks would break the layout; they never come from a valid upload.
    return str(value if value is not None else "").replace("|", " ").replace("\r", " ").replace("\n", " ")


def _safe_text(value) -> str:
    """A text cell for Excel: never a formula (OWASP CSV injection)."""
    text = str(value if value is not None else "")
    if text and text.startswith(_DANGEROUS):
        return "'" + text
    return text


def write_text_result(rows: Iterable[ResultRow], out: IO[bytes], *, totals: dict, lang: str = "en") -> None:
    """The text result in UTF-8, CRLF line ends. ``totals``: total_amount, total_count,
    success_amount, success_count (fen / lines)."""
    head = [
        VERSION,
        str(totals["total_amount"]),
        str(totals["total_count"]),
        "",
        "",
        str(totals["success_amount"]),
        str(totals["success_count"]),
    ]
    out.write(("|".join(head) + "\r\n").encode())
    title = [header_name(c, lang, text=True) for c in REQUEST_COLUMNS + RESULT_COLUMNS]
    out.write(("|".join(title) + "\r\n").encode())
    for row in rows:
        cells = [_text_cell(row.request.get(c, "")) for c in REQUEST_COLUMNS]
        cells[REQUEST_COLUMNS.index("txnAmt")] = (
            str(row.amount) if row.amount else _text_cell(row.request.get("txnAmt", ""))
        )
        cells += [_text_cell(row.result.get(c, "")) for c in RESULT_COLUMNS]
        out.write(("|".join(cells) + "\r\n").encode())


def write_xlsx_result(rows: Iterable[ResultRow], out: IO[bytes], *, totals: dict, lang: str = "en") -> None:
    """The Excel result: one sheet, a header row, amounts in yuan (numbers), ids as text."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("result")
    sheet.append([header_name(c, lang) for c in REQUEST_COLUMNS + RESULT_COLUMNS])
    amount_at = REQUEST_COLUMNS.index("txnAmt")
    for row in rows:
        values = []
        for position, column in enumerate(REQUEST_COLUMNS + RESULT_COLUMNS):
            if position == amount_at and row.amount:
                cell = WriteOnlyCell(sheet, value=_yuan(row.amount))
                cell.number_format = "0.00"
            else:
                source = row.request if column in REQUEST_COLUMNS else row.result
                raw = source.get(column, "")
                if column == "txnAmt" and raw and str(raw).isdigit():
                    raw = f"{_yuan(int(raw))}"
                cell = WriteOnlyCell(sheet, value=_safe_text(raw))
                cell.data_type = "s"
                cell.number_format = "@"
            values.append(cell)
        sheet.append(values)
    summary = workbook.create_sheet("summary")
    for key in ("total_amount", "total_count", "success_amount", "success_count"):
        value = _yuan(totals[key]) if key.endswith("amount") else totals[key]
        summary.append([key, value])
    workbook.save(out)


# --- templates ---------------------------------------------------------------------------------------

TEMPLATE_COLUMNS = ("orderId", "txnAmt", "origQryId", "currencyCode", "reqReserved", "reason")
_SAMPLES = {
    "en": [
        ("RF2026031000000001", 1000, "202603101200000000001", "156", "", "Customer returned the goods"),
        ("RF2026031000000002", 2550, "202603101200000000002", "156", "", "Partial refund"),
    ],
    "zh": [
        ("RF2026031000000001", 1000, "202603101200000000001", "156", "", "客户退货"),
        ("RF2026031000000002", 2550, "202603101200000000002", "156", "", "部分退款"),
    ],
}


def text_template(lang: str) -> bytes:
    """A text template: header with totals, title line, two sample lines (amounts in fen)."""
    samples = _SAMPLES["zh" if lang.startswith("zh") else "en"]
    lines = [f"{VERSION}|{sum(s[1] for s in samples)}|{len(samples)}||"]
    lines.append("|".join(header_name(c, lang, text=True) for c in TEMPLATE_COLUMNS))
    for sample in samples:
        lines.append("|".join(str(v) for v in sample))
    return ("\r\n".join(lines) + "\r\n").encode()


def xlsx_template(lang: str, out: IO[bytes]) -> None:
    """An Excel template: header row, two sample rows (amounts in yuan), id columns formatted as
    text so that Excel keeps long ids as typed."""
    from openpyxl import Workbook

    samples = _SAMPLES["zh" if lang.startswith("zh") else "en"]
    workbook = Workbook()
    sheet = workbook.active
    sheet.title = "refunds"
    sheet.append([header_name(c, lang) for c in TEMPLATE_COLUMNS])
    for sample in samples:
        row = list(sample)
        row[1] = _yuan(row[1])
        sheet.append(row)
    for index, column in enumerate(TEMPLATE_COLUMNS, start=1):
        letter = sheet.cell(row=1, column=index).column_letter
        sheet.column_dimensions[letter].width = 24
        if column != "txnAmt":
            for row_no in range(2, 1001):
                sheet.cell(row=row_no, column=index).number_format = "@"
        else:
            for row_no in range(2, len(samples) + 2):
                sheet.cell(row=row_no, column=index).number_format = "0.00"
    workbook.save(out)
