"""The acquirer clearing file (收单清算文件) of a settlement day: one settlement line per merchant (CSV / XLSX)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import BinaryIO

from django.utils.translation import gettext as _
from django.utils.translation import pgettext
from openpyxl import Workbook

from portal.accounts.models import Organisation

from ..models import MerchantSettlement
from ._common import fixed_stamp, save_xlsx, sheet_with_note, write_csv, yuan


def _header() -> list[str]:
    return [
        _("Settlement day"),
        _("Merchant code"),
        _("Merchant name"),
        pgettext("column: number of", "Payments"),
        _("Payment amount (yuan)"),
        pgettext("column: number of", "Voids"),
        _("Void amount (yuan)"),
        pgettext("column: number of", "Refunds"),
        _("Refund amount (yuan)"),
        _("Fees (yuan)"),
        _("Net settlement (yuan)"),
        _("Funds settle on"),
    ]


def _title(acquirer: Organisation, day: date) -> str:
    return _("Acquirer clearing file — acquirer %(code)s — settlement day %(day)s") % {
        "code": acquirer.code,
        "day": day.isoformat(),
    }


def clearing_rows(acquirer: Organisation, day: date) -> Iterator[list[object]]:
    lines = MerchantSettlement.objects.filter(acquirer=acquirer, day=day).select_related("merchant")
    for line in lines.order_by("merchant__code"):
        yield [
            day.isoformat(),
            line.merchant.code,
            line.merchant.name_zh,
            line.payment_count,
            yuan(line.payment_amount),
            line.void_count,
            yuan(line.void_amount),
            line.refund_count,
            yuan(line.refund_amount),
            yuan(line.fee),
            yuan(line.net),
            line.settle_on.isoformat(),
        ]


def write_clearing_csv(acquirer: Organisation, day: date, out: BinaryIO) -> None:
    write_csv(out, _title(acquirer, day), _header(), clearing_rows(acquirer, day))


def write_clearing_xlsx(acquirer: Organisation, day: date, out: BinaryIO) -> None:
    workbook = Workbook()
    sheet = sheet_with_note(workbook, day.strftime("%Y%m%d"), _header())
    sheet.cell(row=1, column=1, value=_title(acquirer, day))
    for row in clearing_rows(acquirer, day):
        sheet.append([float(v) if hasattr(v, "as_tuple") else v for v in row])
    save_xlsx(workbook, out, fixed_stamp(day))
