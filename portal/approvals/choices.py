"""Statuses of approval requests and stages, and the only transitions allowed between them."""

from django.db import models
from django.utils.translation import gettext_lazy as _


class RequestStatus(models.TextChoices):
    PENDING = "pending", _("Waiting for review")
    APPROVED = "approved", _("Approved")
    REJECTED = "rejected", _("Rejected")
    EXPIRED = "expired", _("Expired")
    VOIDED = "voided", _("Voided (content changed)")
    CANCELLED = "cancelled", _("Cancelled")


class StageStatus(models.TextChoices):
    PENDING = "pending", _("Waiting")
    APPROVED = "approved", _("Approved")
    REJECTED = "rejected", _("Rejected")
    SKIPPED = "skipped", _("Not needed")


class StageOrg(models.TextChoices):
    """Whose people decide a stage: the merchant the thing belongs to, or the merchant's acquirer."""

    MERCHANT = "merchant", _("Merchant")
    ACQUIRER = "acquirer", _("Acquirer")


class Decision(models.TextChoices):
    APPROVE = "approve", _("Approve")
    REJECT = "reject", _("Reject")


# Only a pending request or stage moves, once; every final status is final (maker-checker rule 2).
REQUEST_TRANSITIONS: dict[str, frozenset[str]] = {
    RequestStatus.PENDING: frozenset(
        {
            RequestStatus.APPROVED,
            RequestStatus.REJECTED,
            RequestStatus.EXPIRED,
            RequestStatus.VOIDED,
            RequestStatus.CANCELLED,
        }
    ),
    RequestStatus.APPROVED: frozenset(),
    RequestStatus.REJECTED: frozenset(),
    RequestStatus.EXPIRED: frozenset(),
    RequestStatus.VOIDED: frozenset(),
    RequestStatus.CANCELLED: frozenset(),
}

STAGE_TRANSITIONS: dict[str, frozenset[str]] = {
    StageStatus.PENDING: frozenset({StageStatus.APPROVED, StageStatus.REJECTED, StageStatus.SKIPPED}),
    StageStatus.APPROVED: frozenset(),
    StageStatus.REJECTED: frozenset(),
    StageStatus.SKIPPED: frozenset(),
}
