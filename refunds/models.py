"""Single refunds and voids, their status history, and API idempotency keys."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from .choices import RefundKind, RefundStatus
from .querysets import RefundQuerySet


class Refund(models.Model):
    """A void (消费撤销, ``31``) or refund (退货, ``04``) of one original payment, made by a maker and
    sent through the gateway only after a reviewer approved it.

    ``order_id`` is the refund's own new merchant order id, generated once and sent unchanged on
    every attempt, so that the gateway recognises a repeat; ``txn_time`` is the ACP ``txnTime`` of
    the first send (a status query needs both). ``kind`` is chosen by the service: a void when the
    original is in the current settlement day and the amount is its full amount, else a refund.
    The status moves only along ``choices.TRANSITIONS`` through ``services.refund_transition``.
    While in ``choices.RESERVING`` (and not yet in the ledger as a success) the amount is held
    against the original, so that concurrent requests can never refund more than was paid.
    """

    merchant = models.ForeignKey(
        "accounts.Organisation", on_delete=models.PROTECT, related_name="refunds", verbose_name=_("merchant")
    )
    original = models.ForeignKey(
        "payments.Transaction",
        on_delete=models.PROTECT,
        related_name="refund_requests",
        verbose_name=_("original payment"),
    )
    kind = models.CharField(_("kind"), max_length=8, choices=RefundKind.choices)
    order_id = models.CharField(_("order ID"), max_length=32)
    amount = models.BigIntegerField(_("amount (fen)"))
    currency = models.CharField(_("currency"), max_length=3, default="156")
    reason = models.CharField(_("reason"), max_length=255)
    status = models.CharField(
        _("status"), max_length=16, choices=RefundStatus.choices, default=RefundStatus.PENDING_REVIEW, db_index=True
    )
    maker = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", verbose_name=_("requested by")
    )
    approval_id = models.PositiveBigIntegerField(_("approval request"), null=True, blank=True)
    txn_time = models.DateTimeField(_("sent at (txnTime)"), null=True, blank=True)
    resp_code = models.CharField(_("response code"), max_length=8, blank=True)
    resp_msg = models.CharField(_("response message"), max_length=255, blank=True)
    query_id = models.CharField(_("query ID"), max_length=21, blank=True)
    settle_date = models.CharField(_("settlement date (MMDD)"), max_length=4, blank=True)
    trace_no = models.CharField(_("trace number"), max_length=6, blank=True)
    trace_time = models.CharField(_("trace time"), max_length=10, blank=True)
    ledger_txn = models.ForeignKey(
        "payments.Transaction",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("ledger transaction"),
    )
    created_at = models.DateTimeField(_("requested"), auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)
    sent_at = models.DateTimeField(_("sent"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)

    objects = RefundQuerySet.as_manager()

    class Meta:
        verbose_name = _("refund")
        verbose_name_plural = _("refunds")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["merchant", "order_id"], name="refund_unique_merchant_order"),
            models.CheckConstraint(name="refund_amount_positive", condition=Q(amount__gt=0)),
        ]
        indexes = [
            models.Index(fields=["original", "status"], name="refund_original_status"),
            models.Index(fields=["merchant", "-created_at"], name="refund_merchant_created"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.order_id} {self.amount}"

    @property
    def txn_type(self) -> str:
        from .choices import TXN_TYPE

        return TXN_TYPE[self.kind]

    @property
    def amount_yuan(self) -> str:
        from payments.money import fen_to_yuan

        return str(fen_to_yuan(self.amount))


class RefundStatusChange(models.Model):
    """One transition of a refund: who (None for a job), from, to, when, why."""

    refund = models.ForeignKey(Refund, on_delete=models.CASCADE, related_name="status_changes")
    from_status = models.CharField(max_length=16, blank=True)
    to_status = models.CharField(max_length=16)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    reason = models.CharField(max_length=255, blank=True)
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.refund_id}: {self.from_status} → {self.to_status}"

    @property
    def to_label(self) -> str:
        return str(RefundStatus(self.to_status).label) if self.to_status in RefundStatus.values else self.to_status


class IdempotencyKey(models.Model):
    """The first answer to a money-moving API call made with an ``Idempotency-Key`` header.

    Unique per organisation: the same key with the same request (``request_hash``) gets the stored
    answer again; with another request, 422; while the first is still running, 409. Keys older
    than ``IDEMPOTENCY_KEY_TTL_HOURS`` (24 h) may be used again.
    """

    organisation = models.ForeignKey("accounts.Organisation", on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    request_hash = models.CharField(max_length=64)
    completed = models.BooleanField(default=False)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["organisation", "key"], name="idempotency_unique_org_key")]

    def __str__(self) -> str:
        return f"{self.organisation_id}:{self.key}"
