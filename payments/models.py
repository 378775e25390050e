"""The transaction ledger."""

from __future__ import annotations

import uuid
from pathlib import Path

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

from portal.accounts.models import Organisation

from .choices import (
    AccessType,
    CardType,
    ChannelType,
    ExportFormat,
    ExportKind,
    ExportStatus,
    TxnSource,
    TxnStatus,
    TxnType,
)
from .querysets import ExportJobQuerySet, MerchantProfileQuerySet, TransactionQuerySet


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
            # A merchant's settlement day in file order (close, ZM files): no sort needed.
            models.Index(fields=["merchant", "settle_date", "txn_time", "id"], name="txn_merchant_settle_time"),
            models.Index(fields=["card_hash"], name="txn_card_hash"),
            models.Index(fields=["orig"], name="txn_orig"),
        ]

    def __str__(self) -> str:
        return f"{self.order_id} {self.get_txn_type_display()} {self.amount}"

    @property
    def amount_yuan(self):
        from .money import fen_to_yuan

        return fen_to_yuan(self.amount)


# Online refunds are accepted up to this many days after the original payment (domain rules),
# unless a merchant's profile says otherwise.
DEFAULT_REFUND_WINDOW_DAYS = 330

# Product codes (ACP ``bizType``) a merchant can be enabled for, with their names.
PRODUCTS = {
    "000201": _("B2C gateway payment"),
    "000202": _("B2B payment"),
    "000301": _("Authenticated payment (no redirect)"),
    "000302": _("Rated payment"),
    "000401": _("Payout"),
    "000501": _("Collection"),
    "000601": _("Bill payment"),
    "000801": _("Cross-bank acquiring"),
    "000802": _("Apple Pay"),
    "000901": _("Bound-card payment"),
    "000902": _("Token payment"),
    "001001": _("Subscription"),
}


class MerchantProfile(models.Model):
    """What the acquirer agreed with a merchant: refund window, settlement account, products, limits.

    One per merchant organisation, kept by platform administrators in the Django admin. The
    settlement account is held masked only (first four, last four), never in full. Limits are
    integer fen; an empty limit means none.
    """

    merchant = models.OneToOneField(
        Organisation,
        on_delete=models.PROTECT,
        related_name="merchant_profile",
        limit_choices_to={"kind": "merchant"},
        verbose_name=_("merchant"),
    )
    refund_window_days = models.PositiveIntegerField(
        _("refund window (days)"),
        default=DEFAULT_REFUND_WINDOW_DAYS,
        validators=[MinValueValidator(1)],
        help_text=_("Online refunds are accepted up to this many days after the original payment."),
    )
    settlement_account_masked = models.CharField(_("settlement account (masked)"), max_length=32, blank=True)
    settlement_bank = models.CharField(_("settlement bank"), max_length=128, blank=True)
    products = models.JSONField(_("products"), default=list, blank=True, help_text=_("Product codes, e.g. 000201."))
    limit_per_txn = models.BigIntegerField(_("limit per transaction (fen)"), null=True, blank=True)
    limit_daily = models.BigIntegerField(_("daily limit (fen)"), null=True, blank=True)
    limit_monthly = models.BigIntegerField(_("monthly limit (fen)"), null=True, blank=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    objects = MerchantProfileQuerySet.as_manager()

    class Meta:
        verbose_name = _("merchant profile")
        verbose_name_plural = _("merchant profiles")
        constraints = [
            models.CheckConstraint(name="profile_refund_window_positive", condition=Q(refund_window_days__gte=1)),
            models.CheckConstraint(
                name="profile_limits_positive",
                condition=(Q(limit_per_txn__isnull=True) | Q(limit_per_txn__gt=0))
                & (Q(limit_daily__isnull=True) | Q(limit_daily__gt=0))
                & (Q(limit_monthly__isnull=True) | Q(limit_monthly__gt=0)),
            ),
        ]

    def __str__(self) -> str:
        return str(self.merchant)


def export_storage_dir() -> Path:
    """Where finished downloads live: ``MEDIA_ROOT/exports`` (never under the web root)."""
    return Path(settings.MEDIA_ROOT) / "exports"


class ExportJob(models.Model):
    """A download too large to stream at once, prepared in the background for one user.

    ``params`` rebuilds the user's filter (history mode, dates frozen at request time); a full
    card number never appears there, only the signed ``card_ref`` (keyed hash + masked form).
    The status moves along ``choices.EXPORT_TRANSITIONS`` by compare-and-set updates in
    ``payments.services``. The file is ``MEDIA_ROOT/exports/<id>`` and is kept until
    ``expires_at`` (7 days after it was finished), then purged.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="export_jobs", verbose_name=_("user")
    )
    organisation = models.ForeignKey(
        Organisation, on_delete=models.PROTECT, related_name="export_jobs", verbose_name=_("organisation")
    )
    kind = models.CharField(_("kind"), max_length=16, choices=ExportKind.choices, default=ExportKind.TRANSACTIONS)
    params = models.JSONField(_("filter"), default=dict)
    description = models.JSONField(_("filter description"), default=dict, blank=True)
    file_format = models.CharField(_("format"), max_length=8, choices=ExportFormat.choices)
    language = models.CharField(_("language"), max_length=16, blank=True)
    status = models.CharField(_("status"), max_length=8, choices=ExportStatus.choices, default=ExportStatus.QUEUED)
    rows_total = models.PositiveBigIntegerField(_("rows"), default=0)
    rows_done = models.PositiveBigIntegerField(_("rows written"), default=0)
    size = models.PositiveBigIntegerField(_("size (bytes)"), null=True, blank=True)
    sha256 = models.CharField(_("SHA-256"), max_length=64, blank=True)
    error = models.CharField(_("error"), max_length=255, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    started_at = models.DateTimeField(_("started"), null=True, blank=True)
    heartbeat_at = models.DateTimeField(_("last progress"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    expires_at = models.DateTimeField(_("expires"), null=True, blank=True)

    objects = ExportJobQuerySet.as_manager()

    class Meta:
        verbose_name = _("download job")
        verbose_name_plural = _("download jobs")
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["user", "-created_at"], name="export_user_created"),
            models.Index(fields=["status", "expires_at"], name="export_status_expiry"),
        ]
        constraints = [
            models.CheckConstraint(name="export_progress_within_total", condition=Q(rows_done__lte=F("rows_total"))),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.id} {self.status}"

    @property
    def path(self) -> Path:
        return export_storage_dir() / str(self.id)

    @property
    def percent(self) -> int:
        if self.status == ExportStatus.READY:
            return 100
        if not self.rows_total:
            return 0
        return min(100, self.rows_done * 100 // self.rows_total)

    @property
    def extension(self) -> str:
        return "xlsx" if self.file_format == ExportFormat.XLSX else "csv"

    @property
    def download_name(self) -> str:
        from .settlement import business_tz

        stamp = self.created_at.astimezone(business_tz()).strftime("%Y%m%d%H%M%S")
        return f"transactions_{stamp}.{self.extension}"
