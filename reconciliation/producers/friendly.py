"""Friendly versions of a merchant day (CSV and XLSX): one line per settled transaction, amounts in yuan, headers
in the language active when called (``translation.override``)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import BinaryIO

from django.utils.translation import gettext as _
from openpyxl import Workbook

from payments.choices import CardType, TxnType
from payments.settlement import business_tz
from portal.accounts.models import Organisation

from ..ledger import iter_settle_lines
from ._common import fixed_stamp, save_xlsx, sheet_with_note, write_csv, yuan


def _header() -> list[str]:
    return [
        _("Settlement day"),
        _("Transaction time"),
        _("Transaction type"),
        _("Order ID"),
        _("Query ID"),
        _("Original query ID"),
        _("Card number"),
        _("Card type"),
        _("Product type"),
        _("Amount (yuan)"),
        _("Fee (yuan)"),
        _("Settlement amount (yuan)"),
    ]


def _title(merchant: Organisation, day: date, biz_type: str | None) -> str:
    if biz_type == "000202":
        label = _("B2B reconciliation details")
    elif biz_type == "000601":
        label = _("Bill payment (EBPP) reconciliation details")
    else:
        label = _("Reconciliation details")
    return _("%(label)s — merchant %(code)s — settlement day %(day)s") % {
        "label": label,
        "code": merchant.code,
        "day": day.isoformat(),
    }


def detail_rows(merchant: Organisation, day: date, biz_type: str | None = None) -> Iterator[list[object]]:
    """The lines of the day (fee and settlement signed from the merchant's side, in yuan)."""
    tz = business_tz()
    txn_labels = dict(TxnType.choices)
    card_labels = dict(CardType.choices)
    for txn, line in iter_settle_lines(day, [merchant.pk]):
        if biz_type is not None and txn.biz_type != biz_type:
            continue
        yield [
            day.isoformat(),
            txn.txn_time.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S"),
            str(txn_labels.get(txn.txn_type, txn.txn_type)),
            txn.order_id,
            txn.query_id or "",
            txn.orig_query_id,
            txn.card_masked,
            str(card_labels.get(txn.card_type, txn.card_type)),
            txn.biz_type,
            yuan(line.amount),
            yuan(line.fee),
            yuan(line.settlement),
        ]


def has_biz_type(merchant: Organisation, day: date, biz_type: str) -> bool:
    from ..ledger import day_transactions

    return day_transactions(day, [merchant.pk]).filter(biz_type=biz_type).exists()


def write_detail_csv(merchant: Organisation, day: date, out: BinaryIO, biz_type: str | None = None) -> None:
    write_csv(out, _title(merchant, day, biz_type), _header(), detail_rows(merchant, day, biz_type))


def write_detail_xlsx(merchant: Organisation, day: date, out: BinaryIO, biz_type: str | None = None) -> None:
    workbook = Workbook()
    sheet = sheet_with_note(workbook, day.strftime("%Y%m%d"), _header())
    sheet.cell(row=1, column=1, value=_title(merchant, day, biz_type))
    for row in detail_rows(merchant, day, biz_type):
        sheet.append([float(v) if hasattr(v, "as_tuple") else v for v in row])
    for column in ("J", "K", "L"):
        for cell in sheet[column][3:]:
            cell.number_format = "#,##0.00"
    save_xlsx(workbook, out, fixed_stamp(day))
