"""The network side of the sandbox acquirer: what UnionPay would hold about each transaction and batch.

These rows belong to the simulated network, not to the portal: the portal learns about them only through ACP
messages over HTTP. Even here the full card number is never stored: masked (first six, last four) and keyed hash.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from .outcomes import STATUS_FAILED, STATUS_PENDING, STATUS_SUCCESS


class SandboxStatus(models.TextChoices):
    SUCCESS = STATUS_SUCCESS, _("Success")
    FAILED = STATUS_FAILED, _("Failed")
    PENDING = STATUS_PENDING, _("Pending")


class SandboxBatch(models.Model):
    """A batch request (txnType 21) as the network received it, and its result file (masked card numbers)."""

    mer_id = models.CharField(_("merchant number"), max_length=15)
    batch_no = models.CharField(_("batch number"), max_length=4)
    batch_date = models.DateField(_("batch date"))
    txn_time = models.CharField(_("transaction time"), max_length=14)
    txn_sub_type = models.CharField(_("transaction sub-type"), max_length=2)
    biz_type = models.CharField(_("product type"), max_length=6)
    total_qty = models.PositiveIntegerField(_("total count"))
    total_amt = models.BigIntegerField(_("total amount (fen)"))
    encoding = models.CharField(_("encoding"), max_length=8, default="UTF-8")
    result_text = models.TextField(_("result file"), blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("sandbox batch")
        verbose_name_plural = _("sandbox batches")
        constraints = [
            models.UniqueConstraint(fields=["mer_id", "batch_date", "batch_no"], name="sandbox_batch_unique_per_day")
        ]

    def __str__(self) -> str:
        return f"{self.mer_id} {self.batch_date} {self.batch_no}"


class SandboxTransaction(models.Model):
    """One transaction on the network side, with its asynchronous notification state.

    ``query_id`` is the network's 21-digit id; ``settle_date`` follows the 23:00 Beijing cut-off; a pending row turns
    successful at ``resolve_at``. Notifications go to ``back_url`` (attempts, next attempt, delivery time).
    """

    mer_id = models.CharField(_("merchant number"), max_length=15)
    order_id = models.CharField(_("order ID"), max_length=40)
    txn_time = models.DateTimeField(_("transaction time"))
    txn_type = models.CharField(_("transaction type"), max_length=2)
    txn_sub_type = models.CharField(_("transaction sub-type"), max_length=2, default="00")
    biz_type = models.CharField(_("product type"), max_length=6, default="000201")
    channel_type = models.CharField(_("channel"), max_length=2, default="07")
    access_type = models.CharField(_("access type"), max_length=1, default="0")
    amount = models.BigIntegerField(_("amount (fen)"))
    currency = models.CharField(_("currency"), max_length=3, default="156")
    status = models.CharField(_("status"), max_length=8, choices=SandboxStatus.choices)
    resp_code = models.CharField(_("response code"), max_length=2)
    query_id = models.CharField(_("query ID"), max_length=21, unique=True)
    orig_query_id = models.CharField(_("original query ID"), max_length=21, blank=True)
    settle_date = models.DateField(_("settlement date"))
    trace_no = models.CharField(_("trace number"), max_length=6)
    trace_time = models.CharField(_("trace time"), max_length=10)
    card_masked = models.CharField(_("card number"), max_length=19, blank=True)
    card_hash = models.CharField(_("card hash"), max_length=64, blank=True)
    card_type = models.CharField(_("card type"), max_length=2, blank=True)
    refunded_amount = models.BigIntegerField(_("refunded amount (fen)"), default=0)
    req_reserved = models.CharField(_("merchant reserved field"), max_length=1024, blank=True)
    resolve_at = models.DateTimeField(_("pending until"), null=True, blank=True)
    batch = models.ForeignKey(
        SandboxBatch, on_delete=models.CASCADE, null=True, blank=True, related_name="transactions"
    )
    back_url = models.CharField(_("notification URL"), max_length=512, blank=True)
    notify_attempts = models.PositiveSmallIntegerField(_("notification attempts"), default=0)
    next_attempt_at = models.DateTimeField(_("next notification attempt"), null=True, blank=True)
    delivered_at = models.DateTimeField(_("notification delivered"), null=True, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("sandbox transaction")
        verbose_name_plural = _("sandbox transactions")
        constraints = [models.UniqueConstraint(fields=["mer_id", "order_id"], name="sandbox_txn_unique_order")]
        indexes = [models.Index(fields=["next_attempt_at"], name="sandbox_txn_next_attempt")]

    def __str__(self) -> str:
        return f"{self.mer_id} {self.order_id} {self.txn_type} {self.status}"
