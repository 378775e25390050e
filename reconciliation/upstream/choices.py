"""Vocabularies of upstream reconciliation: run sources and statuses, discrepancy classes, statuses, resolutions."""

from django.db import models
from django.utils.translation import gettext_lazy as _


class RunSource(models.TextChoices):
    UPLOAD = "upload", _("Upload")
    COMMAND = "command", _("Command")
    FILE_TRANSFER = "file_transfer", _("File transfer (txnType 76)")


class RunStatus(models.TextChoices):
    COMPLETED = "completed", _("Completed")
    FAILED = "failed", _("Failed")


class FileKind(models.TextChoices):
    ZIP = "zip", _("Reconciliation zip")
    ZM = "zm", _("Detail file (ZM)")
    ZME = "zme", _("Adjustment file (ZME)")


class RecordKind(models.TextChoices):
    ZM = "zm", _("Detail")
    ZME = "zme", _("Adjustment")


class DiscrepancyClass(models.TextChoices):
    UPSTREAM_ONLY = "upstream_only", _("Upstream only (长款)")
    LEDGER_ONLY = "ledger_only", _("Ledger only (短款)")
    AMOUNT = "amount", _("Amount differs")
    STATUS = "status", _("Status differs")
    FEE = "fee", _("Fee differs")


#: Order in which classes are shown (matched first on the run page).
MATCHED = "matched"


class DiscrepancyStatus(models.TextChoices):
    OPEN = "open", _("Open")
    ASSIGNED = "assigned", _("Assigned")
    PENDING_APPROVAL = "pending_approval", _("Waiting for approval")
    RESOLVED = "resolved", _("Resolved")


TRANSITIONS: dict[str, frozenset[str]] = {
    DiscrepancyStatus.OPEN: frozenset(
        {DiscrepancyStatus.ASSIGNED, DiscrepancyStatus.PENDING_APPROVAL, DiscrepancyStatus.RESOLVED}
    ),
    DiscrepancyStatus.ASSIGNED: frozenset(
        {DiscrepancyStatus.ASSIGNED, DiscrepancyStatus.PENDING_APPROVAL, DiscrepancyStatus.RESOLVED}
    ),
    # Back to open / assigned when the approval is rejected, expires, is voided or cancelled.
    DiscrepancyStatus.PENDING_APPROVAL: frozenset(
        {DiscrepancyStatus.OPEN, DiscrepancyStatus.ASSIGNED, DiscrepancyStatus.RESOLVED}
    ),
    DiscrepancyStatus.RESOLVED: frozenset(),
}


class Resolution(models.TextChoices):
    ADJUST_LEDGER = "adjust_ledger", _("Adjust the ledger")
    UPSTREAM_ERROR = "upstream_error", _("Upstream error")
    WRITE_OFF = "write_off", _("Write off")
