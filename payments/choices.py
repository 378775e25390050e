"""Ledger vocabularies: ACP codes (formats.md §2) and the transaction status machine."""

from django.db import models
from django.utils.translation import gettext_lazy as _


class TxnStatus(models.TextChoices):
    SUCCESS = "success", _("Success")
    FAILED = "failed", _("Failed")
    PENDING = "pending", _("Pending")


# A status only moves forward: a pending transaction settles once, a final one never changes.
TRANSITIONS: dict[str, frozenset[str]] = {
    TxnStatus.PENDING: frozenset({TxnStatus.SUCCESS, TxnStatus.FAILED}),
    TxnStatus.SUCCESS: frozenset(),
    TxnStatus.FAILED: frozenset(),
}


class TxnType(models.TextChoices):
    """ACP ``txnType`` values that can appear as ledger rows."""

    CONSUME = "01", _("Payment")
    PREAUTH = "02", _("Pre-authorisation")
    PREAUTH_COMPLETE = "03", _("Pre-authorisation completion")
    REFUND = "04", _("Refund")
    COLLECTION = "11", _("Collection")
    PAYOUT = "12", _("Payout")
    BILL_PAYMENT = "13", _("Bill payment")
    VOID = "31", _("Void")
    PREAUTH_VOID = "32", _("Pre-authorisation void")
    PREAUTH_COMPLETE_VOID = "33", _("Pre-authorisation completion void")


# Transactions that return money of an original payment (linked through ``orig``).
REVERSAL_TYPES = frozenset({TxnType.REFUND, TxnType.VOID})
# Originals that can be refunded online.
REFUNDABLE_TYPES = frozenset({TxnType.CONSUME, TxnType.PREAUTH_COMPLETE})


class ChannelType(models.TextChoices):
    PC = "07", _("PC / tablet")
    MOBILE = "08", _("Mobile")


class AccessType(models.TextChoices):
    MERCHANT_DIRECT = "0", _("Merchant direct")
    ACQUIRER = "1", _("Through the acquirer")
    PLATFORM = "2", _("Platform merchant")


class CardType(models.TextChoices):
    """ACP ``payCardType``."""

    UNKNOWN = "00", _("Unknown")
    DEBIT = "01", _("Debit")
    CREDIT = "02", _("Credit")
    QUASI_CREDIT = "03", _("Quasi-credit")
    DEBIT_CREDIT = "04", _("Debit and credit")
    PREPAID = "05", _("Prepaid")
    SEMI_OPEN_PREPAID = "06", _("Semi-open prepaid")


class TxnSource(models.TextChoices):
    NOTIFICATION = "notification", _("Notification")
    IMPORT = "import", _("Reconciliation import")
    SANDBOX = "sandbox", _("Sandbox")


class ExportStatus(models.TextChoices):
    QUEUED = "queued", _("Queued")
    RUNNING = "running", _("Being prepared")
    READY = "ready", _("Ready")
    FAILED = "failed", _("Failed")
    EXPIRED = "expired", _("Expired")


# A background download moves forward only. ``running → running`` is the reclaim of a job whose
# worker died (its heartbeat went stale); the claim is a compare-and-set on status and heartbeat.
EXPORT_TRANSITIONS: dict[str, frozenset[str]] = {
    ExportStatus.QUEUED: frozenset({ExportStatus.RUNNING, ExportStatus.FAILED}),
    ExportStatus.RUNNING: frozenset({ExportStatus.RUNNING, ExportStatus.READY, ExportStatus.FAILED}),
    ExportStatus.READY: frozenset({ExportStatus.EXPIRED}),
    ExportStatus.FAILED: frozenset({ExportStatus.EXPIRED}),
    ExportStatus.EXPIRED: frozenset(),
}


class ExportFormat(models.TextChoices):
    CSV_UTF8 = "csv_utf8", _("CSV (UTF-8)")
    CSV_GBK = "csv_gbk", _("CSV (GBK)")
    XLSX = "xlsx", _("Excel (XLSX)")


class ExportKind(models.TextChoices):
    TRANSACTIONS = "transactions", _("Transaction details")
