"""The transaction ledger."""

from __future__ import annotations

from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

from portal.accounts.models import Organisation

from .choices import AccessType, CardType, ChannelType, TxnSource, TxnStatus, TxnType
from .querysets import TransactionQuerySet


class Transaction(models.Model):
    """One transaction of a merchant as the card network reported it (ACP message fields).

    Rows enter through ``payments.services.ledger_record`` only (notification receiver,
    reconciliation import, sandbox) or the benchmark bulk loader. Amounts are integer fen in
    ``currency`` (ISO 4217 numeric, 156 = CNY). ``txn_time`` is the ACP ``txnTime`` (Beijing time)
    stored aware; ``settle_date`` comes from ``payments.settlement`` (23:00 cut-off).
    A void or refund points at its original payment through ``orig`` (``origQryId``);
    ``refunded_amount`` on the original is what was returned so far and never exceeds ``amount``.
    The full card number is never stored: ``card_masked`` (first six, last four) and
    ``card_hash`` (HMAC-SHA256 under ``CARD_HASH_KEY``) for exact search.
    """

    merchant = models.ForeignKey(
        Organisation, on_delete=models.PROTECT, related_name="transactions", verbose_name=_("merchant")
    )
    acquirer = models.ForeignKey(
        Organisation, on_delete=models.PROTECT, related_name="acquired_transactions", verbose_name=_("acquirer")
    )
    order_id = models.CharField(_("order ID"), max_length=40)
    txn_time = models.DateTimeField(_("transaction time"))
    txn_type = models.CharField(_("transaction type"), max_length=2, choices=TxnType.choices)
    txn_sub_type = models.CharField(_("transaction sub-type"), max_length=2, default="01")
    biz_type = models.CharField(_("product type"), max_length=6, default="000201")
    channel_type = models.CharField(_("channel"), max_length=2, choices=ChannelType.choices, default=ChannelType.PC)
    access_type = models.CharField(
        _("access type"), max_length=1, choices=AccessType.choices, default=AccessType.MERCHANT_DIRECT
    )
    amount = models.BigIntegerField(_("amount (fen)"))
    currency = models.CharField(_("currency"), max_length=3, default="156")
    status = models.CharField(_("status"), max_length=8, choices=TxnStatus.choices)
    resp_code = models.CharField(_("response code"), max_length=8, blank=True)
    resp_msg = models.CharField(_("response message"), max_length=255, blank=True)
    query_id = models.CharField(_("query ID"), max_length=21, null=True, blank=True, unique=True)
    trace_no = models.CharField(_("trace number"), max_length=6, blank=True)
    trace_time = models.CharField(_("trace time"), max_length=10, blank=True, help_text=_("MMDDhhmmss"))
    settle_date = models.DateField(_("settlement date"))
    orig_query_id = models.CharField(_("original query ID"), max_length=21, blank=True)
    orig = models.ForeignKey(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="children",
        verbose_name=_("original transaction"),
    )
    card_masked = models.CharField(_("card number"), max_length=19, blank=True)
    card_hash = models.CharField(_("card hash"), max_length=64, blank=True)
    card_type = models.CharField(_("card type"), max_length=2, choices=CardType.choices, blank=True)
    req_reserved = models.CharField(_("merchant reserved field"), max_length=1024, blank=True)
    refunded_amount = models.BigIntegerField(_("refunded amount (fen)"), default=0)
    source = models.CharField(_("source"), max_length=16, choices=TxnSource.choices)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    objects = TransactionQuerySet.as_manager()

    class Meta:
        verbose_name = _("transaction")
        verbose_name_plural = _("transactions")
        ordering = ["-txn_time", "-id"]
        constraints = [
            models.CheckConstraint(name="txn_amount_positive", condition=Q(amount__gt=0)),
            models.CheckConstraint(
                name="txn_refunded_within_amount",
                condition=Q(refunded_amount__gte=0) & Q(refunded_amount__lte=F("amount")),
            ),
            # The merchant order id is unique per merchant (the index also serves order-id search).
            models.UniqueConstraint(fields=["merchant", "order_id"], name="txn_unique_merchant_order"),
        ]
        indexes = [
            # History and today's list: keyset on (txn_time, id) within a merchant.
            models.Index(F("merchant"), F("txn_time").desc(), F("id").desc(), name="txn_merchant_time"),
            # An acquirer's cross-merchant query.
            models.Index(F("acquirer"), F("txn_time").desc(), F("id").desc(), name="txn_acquirer_time"),
            models.Index(fields=["merchant", "settle_date"], name="txn_merchant_settle"),
            models.Index(fields=["card_hash"], name="txn_card_hash"),
            models.Index(fields=["orig"], name="txn_orig"),
        ]

    def __str__(self) -> str:
        return f"{self.order_id} {self.get_txn_type_display()} {self.amount}"

    @property
    def amount_yuan(self):
        from .money import fen_to_yuan

        return fen_to_yuan(self.amount)
