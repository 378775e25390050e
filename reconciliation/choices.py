"""Vocabularies of settlement and reconciliation."""

from django.db import models
from django.utils.translation import gettext_lazy as _


class DayStatus(models.TextChoices):
    CLOSED = "closed", _("Closed")


class CardClass(models.TextChoices):
    """The card classes a fee rate is set for (from the ledger's ``card_type``)."""

    DEBIT = "debit", _("Debit card")
    CREDIT = "credit", _("Credit card")
    OTHER = "other", _("Other card")


# ACP payCardType → fee card class: 01 debit; 02 credit, 03 quasi-credit; anything else "other".
CARD_CLASS_OF = {"01": CardClass.DEBIT, "02": CardClass.CREDIT, "03": CardClass.CREDIT}


class FeeReturn(models.TextChoices):
    """``settings.RECON_REFUND_FEE_RETURN``: what a refund gives back of the original payment's fee."""

    NONE = "none", _("No fee is returned on refunds")
    PROPORTIONAL = "proportional", _("The fee is returned in proportion to the refunded amount")


class FileKind(models.TextChoices):
    """What a generated file is. ``ZIP`` is the network-compatible archive (ZM + ZME + RD)."""

    ZIP = "zip", _("Reconciliation file (network format, zip)")
    DETAIL_CSV = "detail_csv", _("Reconciliation details (CSV)")
    DETAIL_XLSX = "detail_xlsx", _("Reconciliation details (Excel)")
    B2B_CSV = "b2b_csv", _("B2B reconciliation details (CSV)")
    B2B_XLSX = "b2b_xlsx", _("B2B reconciliation details (Excel)")
    EBPP_CSV = "ebpp_csv", _("Bill payment (EBPP) reconciliation details (CSV)")
    EBPP_XLSX = "ebpp_xlsx", _("Bill payment (EBPP) reconciliation details (Excel)")
    STATEMENT_XLSX = "statement_xlsx", _("Monthly statement (Excel)")
    STATEMENT_PDF = "statement_pdf", _("Monthly statement (PDF)")
    CLEARING_CSV = "clearing_csv", _("Acquirer clearing file (CSV)")
    CLEARING_XLSX = "clearing_xlsx", _("Acquirer clearing file (Excel)")


DAILY_MERCHANT_KINDS = (
    FileKind.ZIP,
    FileKind.DETAIL_CSV,
    FileKind.DETAIL_XLSX,
    FileKind.B2B_CSV,
    FileKind.B2B_XLSX,
    FileKind.EBPP_CSV,
    FileKind.EBPP_XLSX,
)
MONTHLY_KINDS = (FileKind.STATEMENT_XLSX, FileKind.STATEMENT_PDF)
ACQUIRER_KINDS = (FileKind.CLEARING_CSV, FileKind.CLEARING_XLSX)
# Friendly files come in each portal language; the network zip in none.
LANGUAGE_NEUTRAL_KINDS = frozenset({FileKind.ZIP})
# bizType of the separate B2B / EBPP files.
BIZ_TYPE_OF_KIND = {
    FileKind.B2B_CSV: "000202",
    FileKind.B2B_XLSX: "000202",
    FileKind.EBPP_CSV: "000601",
    FileKind.EBPP_XLSX: "000601",
}
