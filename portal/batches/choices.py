"""Batch and line statuses, and the transitions each may take (forward only)."""

from django.db import models
from django.utils.translation import gettext_lazy as _


class BatchStatus(models.TextChoices):
    UPLOADED = "uploaded", _("Uploaded")
    VALIDATING = "validating", _("Validating")
    VALIDATED = "validated", _("Validated")
    INVALID = "invalid", _("Invalid")
    PENDING_REVIEW = "pending_review", _("Pending review")
    APPROVED = "approved", _("Approved")
    PROCESSING = "processing", _("Processing")
    COMPLETED = "completed", _("Completed")
    PARTIALLY_COMPLETED = "partially_completed", _("Partially completed")
    FAILED = "failed", _("Failed")
    REJECTED = "rejected", _("Rejected")
    CANCELLED = "cancelled", _("Cancelled")
    EXPIRED = "expired", _("Expired")


S = BatchStatus
TRANSITIONS: dict[str, frozenset[str]] = {
    S.UPLOADED: frozenset({S.VALIDATING, S.CANCELLED}),
    S.VALIDATING: frozenset({S.VALIDATED, S.INVALID, S.CANCELLED}),
    S.VALIDATED: frozenset({S.PENDING_REVIEW, S.CANCELLED, S.EXPIRED}),
    S.PENDING_REVIEW: frozenset({S.APPROVED, S.REJECTED, S.CANCELLED, S.EXPIRED}),
    S.APPROVED: frozenset({S.PROCESSING}),
    S.PROCESSING: frozenset({S.COMPLETED, S.PARTIALLY_COMPLETED, S.FAILED}),
    S.COMPLETED: frozenset(),
    S.PARTIALLY_COMPLETED: frozenset(),
    S.FAILED: frozenset(),
    S.INVALID: frozenset(),
    S.REJECTED: frozenset(),
    S.CANCELLED: frozenset(),
    S.EXPIRED: frozenset(),
}

# While the batch shows a progress bar, its page refreshes itself.
RUNNING = frozenset({S.UPLOADED, S.VALIDATING, S.APPROVED, S.PROCESSING})
# A maker may cancel until a reviewer approved.
CANCELLABLE = frozenset({S.UPLOADED, S.VALIDATING, S.VALIDATED, S.PENDING_REVIEW})
# Batches that no longer hold their file's content hash or their lines' order ids: the same
# file or the same order ids may be uploaded again.
RELEASED = frozenset({S.INVALID, S.REJECTED, S.CANCELLED, S.EXPIRED})
FINISHED = frozenset({S.COMPLETED, S.PARTIALLY_COMPLETED, S.FAILED})


class LineStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    VALID = "valid", _("Valid")
    INVALID = "invalid", _("Invalid")
    PROCESSING = "processing", _("Processing")
    SENT = "sent", _("Sent, awaiting result")
    SUCCEEDED = "succeeded", _("Succeeded")
    FAILED = "failed", _("Failed")


L = LineStatus
LINE_TRANSITIONS: dict[str, frozenset[str]] = {
    L.PENDING: frozenset({L.VALID, L.INVALID}),
    L.VALID: frozenset({L.PROCESSING}),
    L.PROCESSING: frozenset({L.SENT, L.SUCCEEDED, L.FAILED}),
    L.SENT: frozenset({L.SUCCEEDED, L.FAILED}),
    L.INVALID: frozenset(),
    L.SUCCEEDED: frozenset(),
    L.FAILED: frozenset(),
}


def line_previous(status: str) -> frozenset[str]:
    """The statuses a line may move to ``status`` from (for guarded updates)."""
    return frozenset(old for old, new in LINE_TRANSITIONS.items() if status in new)


class FileFormat(models.TextChoices):
    TEXT = "text", _("Text (.txt / .csv)")
    XLSX = "xlsx", _("Excel (.xlsx)")
