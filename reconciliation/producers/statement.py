"""The monthly statement (月账单) of a merchant as XLSX and PDF: a line per closed settlement day of the month
(payments, voids, refunds, fees, net), the month's totals, and the opening and closing totals (cumulative net
settlement of every closed day before the month, and after it)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import BinaryIO

from django.db.models import Sum
from django.utils.translation import gettext as _
from django.utils.translation import pgettext
from openpyxl import Workbook

from payments.money import format_yuan
from portal.accounts.models import Organisation

from ..models import MerchantSettlement
from ._common import cutoff_note, fixed_stamp, save_xlsx, sheet_with_note, yuan

CJK_FONT = "STSong-Light"


def month_end(month: date) -> date:
    return (month.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)


@dataclass
class Statement:
    merchant: Organisation
    month: date
    lines: list[MerchantSettlement]
    opening: int
    closing: int
    totals: dict[str, int]


def build_statement(merchant: Organisation, month: date) -> Statement:
    month = month.replace(day=1)
    last = month_end(month)
    lines = list(MerchantSettlement.objects.filter(merchant=merchant, day__gte=month, day__lte=last).order_by("day"))
    opening = MerchantSettlement.objects.filter(merchant=merchant, day__lt=month).aggregate(s=Sum("net"))["s"] or 0
    keys = ("payment_count", "payment_amount", "void_count", "void_amount", "refund_count", "refund_amount")
    totals = {key: sum(getattr(line, key) for line in lines) for key in (*keys, "fee", "net")}
    return Statement(merchant, month, lines, opening, opening + totals["net"], totals)


def _header() -> list[str]:
    return [
        _("Settlement day"),
        _("Funds settle on"),
        pgettext("column: number of", "Payments"),
        _("Payment amount (yuan)"),
        pgettext("column: number of", "Voids"),
        _("Void amount (yuan)"),
        pgettext("column: number of", "Refunds"),
        _("Refund amount (yuan)"),
        _("Fees (yuan)"),
        _("Net settlement (yuan)"),
    ]


def _title(statement: Statement) -> str:
    return _("Monthly statement %(month)s — merchant %(code)s %(name)s") % {
        "month": statement.month.strftime("%Y-%m"),
        "code": statement.merchant.code,
        "name": statement.merchant.name_zh,
    }


def _line_values(line) -> list:
    return [
        line.payment_count,
        line.payment_amount,
        line.void_count,
        line.void_amount,
        line.refund_count,
        line.refund_amount,
        line.fee,
        line.net,
    ]


def write_statement_xlsx(merchant: Organisation, month: date, out: BinaryIO) -> None:
    st = build_statement(merchant, month)
    workbook = Workbook()
    sheet = sheet_with_note(workbook, st.month.strftime("%Y-%m"), [])
    sheet.cell(row=1, column=1, value=_title(st))
    sheet.delete_rows(3)
    sheet.append([_("Opening total (yuan)"), float(yuan(st.opening))])
    sheet.append(_header())
    for line in st.lines:
        values = _line_values(line)
        row = [line.day.isoformat(), line.settle_on.isoformat()]
        for index, value in enumerate(values):
            row.append(value if index % 2 == 0 and index < 6 else float(yuan(value)))
        sheet.append(row)
    t = st.totals
    sheet.append(
        [
            _("Month total"),
            "",
            t["payment_count"],
            float(yuan(t["payment_amount"])),
            t["void_count"],
            float(yuan(t["void_amount"])),
            t["refund_count"],
            float(yuan(t["refund_amount"])),
            float(yuan(t["fee"])),
            float(yuan(t["net"])),
        ]
    )
    sheet.append([_("Closing total (yuan)"), float(yuan(st.closing))])
    save_xlsx(workbook, out, fixed_stamp(month_end(st.month) + timedelta(days=1)))


def write_statement_pdf(merchant: Organisation, month: date, out: BinaryIO) -> None:
    """The PDF statement (A4 landscape, CJK font that needs no file: ``STSong-Light``; ``invariant`` so the same
    statement gives the same bytes)."""
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4, landscape
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    if CJK_FONT not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(UnicodeCIDFont(CJK_FONT))
    st = build_statement(merchant, month)
    title_style = ParagraphStyle("title", fontName=CJK_FONT, fontSize=14, leading=18)
    body_style = ParagraphStyle("body", fontName=CJK_FONT, fontSize=9, leading=12)
    doc = SimpleDocTemplate(
        out,
        pagesize=landscape(A4),
        invariant=1,
        title=_title(st),
        author="merchant-portal",
        creator="merchant-portal",
        producer="merchant-portal",
        subject="",
        keywords="",
    )
    data = [_header()]
    for line in st.lines:
        values = _line_values(line)
        row = [line.day.isoformat(), line.settle_on.isoformat()]
        for index, value in enumerate(values):
            row.append(str(value) if index % 2 == 0 and index < 6 else format_yuan(value))
        data.append(row)
    t = st.totals
    data.append(
        [
            _("Month total"),
            "",
            str(t["payment_count"]),
            format_yuan(t["payment_amount"]),
            str(t["void_count"]),
            format_yuan(t["void_amount"]),
            str(t["refund_count"]),
            format_yuan(t["refund_amount"]),
            format_yuan(t["fee"]),
            format_yuan(t["net"]),
        ]
    )
    table = Table(data, repeatRows=1)
    table.setStyle(
        TableStyle(
            [
                ("FONTNAME", (0, 0), (-1, -1), CJK_FONT),
                ("FONTSIZE", (0, 0), (-1, -1), 8),
                ("GRID", (0, 0), (-1, -1), 0.25, colors.grey),
                ("BACKGROUND", (0, 0), (-1, 0), colors.lightgrey),
                ("ALIGN", (2, 1), (-1, -1), "RIGHT"),
            ]
        )
    )
    story = [
        Paragraph(_title(st), title_style),
        Paragraph(cutoff_note(), body_style),
        Spacer(1, 6),
        Paragraph("%s: %s" % (_("Opening total (yuan)"), format_yuan(st.opening)), body_style),
        Spacer(1, 6),
        table,
        Spacer(1, 6),
        Paragraph("%s: %s" % (_("Closing total (yuan)"), format_yuan(st.closing)), body_style),
    ]
    doc.build(story)
