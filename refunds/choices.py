"""Refund statuses and the only transitions allowed between them; the kind (void or refund)."""

from django.db import models
from django.utils.translation import gettext_lazy as _


class RefundKind(models.TextChoices):
    VOID = "void", _("Void")
    REFUND = "refund", _("Refund")


# ACP txnType of each kind (formats.md §2.2).
TXN_TYPE = {RefundKind.VOID: "31", RefundKind.REFUND: "04"}


class RefundStatus(models.TextChoices):
    PENDING_REVIEW = "pending_review", _("Waiting for review")
    APPROVED = "approved", _("Approved, queued for sending")
    SENDING = "sending", _("Sending")
    SENT = "sent", _("Sent, waiting for the result")
    SUCCEEDED = "succeeded", _("Succeeded")
    FAILED = "failed", _("Failed")
    REJECTED = "rejected", _("Rejected")
    CANCELLED = "cancelled", _("Cancelled")
    EXPIRED = "expired", _("Expired")


S = RefundStatus
TRANSITIONS: dict[str, frozenset[str]] = {
    S.PENDING_REVIEW: frozenset({S.APPROVED, S.REJECTED, S.CANCELLED, S.EXPIRED}),
    S.APPROVED: frozenset({S.SENDING}),
    # sending → approved: the gateway asked to retry later (02/06) before accepting anything.
    S.SENDING: frozenset({S.SENT, S.SUCCEEDED, S.FAILED, S.APPROVED}),
    S.SENT: frozenset({S.SUCCEEDED, S.FAILED}),
    S.SUCCEEDED: frozenset(),
    S.FAILED: frozenset(),
    S.REJECTED: frozenset(),
    S.CANCELLED: frozenset(),
    S.EXPIRED: frozenset(),
}

# A refund in one of these statuses holds (reserves) its amount of the original payment until the
# ledger records it as successful (then the original's refunded_amount holds it) or it fails.
RESERVING = frozenset({S.PENDING_REVIEW, S.APPROVED, S.SENDING, S.SENT, S.SUCCEEDED})
FINAL = frozenset({S.SUCCEEDED, S.FAILED, S.REJECTED, S.CANCELLED, S.EXPIRED})
