"""Settlement-day close results, fee rates, the working-day overrides and generated reconciliation files."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from portal.accounts.models import Organisation

from .choices import CardClass, DayStatus, FileKind
from .querysets import AcquirerSettlementQuerySet, MerchantSettlementQuerySet, ReconciliationFileQuerySet


class SettlementDay(models.Model):
    """A closed settlement day T (Beijing T-1 23:00 → T 23:00).

    Written once by ``services.settlement_close_day``; ``content_hash`` is the SHA-256 of the day's results
    (every merchant and acquirer line, canonical JSON), so a second close can tell "same result" (no change) from
    "different result" (refused and audited).
    """

    day = models.DateField(_("settlement day"), unique=True)
    status = models.CharField(_("status"), max_length=16, choices=DayStatus.choices, default=DayStatus.CLOSED)
    closed_at = models.DateTimeField(_("closed at"))
    closed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("closed by"),
    )
    content_hash = models.CharField(_("content hash"), max_length=64)
    merchant_count = models.PositiveIntegerField(_("merchants"), default=0)

    class Meta:
        verbose_name = _("settlement day")
        verbose_name_plural = _("settlement days")
        ordering = ["-day"]

    def __str__(self) -> str:
        return f"{self.day:%Y-%m-%d} {self.status}"


class _Totals(models.Model):
    """Counts and amounts (fen) shared by a merchant's and an acquirer's settlement line.

    ``fee`` is what the merchant pays net (fees of payments minus fees returned on voids and refunds; positive =
    the merchant is charged). ``net`` = payments - voids - refunds - fee, signed from the merchant's side.
    """

    payment_count = models.PositiveIntegerField(_("payments"), default=0)
    payment_amount = models.BigIntegerField(_("payment amount (fen)"), default=0)
    void_count = models.PositiveIntegerField(_("voids"), default=0)
    void_amount = models.BigIntegerField(_("void amount (fen)"), default=0)
    refund_count = models.PositiveIntegerField(_("refunds"), default=0)
    refund_amount = models.BigIntegerField(_("refund amount (fen)"), default=0)
    fee = models.BigIntegerField(_("fee (fen)"), default=0)
    net = models.BigIntegerField(_("net settlement (fen)"), default=0)
    currency = models.CharField(_("currency"), max_length=3, default="156")

    class Meta:
        abstract = True

    @property
    def count(self) -> int:
        return self.payment_count + self.void_count + self.refund_count

    @property
    def amount(self) -> int:
        return self.payment_amount + self.void_amount + self.refund_amount


class MerchantSettlement(_Totals):
    """One merchant's results of a closed settlement day; funds move on ``settle_on`` (T+1, next working day)."""

    settlement_day = models.ForeignKey(
        SettlementDay, on_delete=models.PROTECT, related_name="merchant_lines", verbose_name=_("settlement day")
    )
    day = models.DateField(_("settlement day"))
    merchant = models.ForeignKey(
        Organisation, on_delete=models.PROTECT, related_name="settlements", verbose_name=_("merchant")
    )
    acquirer = models.ForeignKey(
        Organisation, on_delete=models.PROTECT, related_name="merchant_settlements", verbose_name=_("acquirer")
    )
    settle_on = models.DateField(_("funds settle on"))

    objects = MerchantSettlementQuerySet.as_manager()

    class Meta:
        verbose_name = _("merchant settlement")
        verbose_name_plural = _("merchant settlements")
        ordering = ["-day", "merchant__code"]
        constraints = [models.UniqueConstraint(fields=["merchant", "day"], name="recon_ms_unique_merchant_day")]
        indexes = [models.Index(fields=["acquirer", "-day"], name="recon_ms_acquirer_day")]

    def __str__(self) -> str:
        return f"{self.day:%Y-%m-%d} {self.merchant_id} {self.net}"


class AcquirerSettlement(_Totals):
    """The totals of an acquirer's merchants for a closed settlement day."""

    settlement_day = models.ForeignKey(
        SettlementDay, on_delete=models.PROTECT, related_name="acquirer_lines", verbose_name=_("settlement day")
    )
    day = models.DateField(_("settlement day"))
    acquirer = models.ForeignKey(
        Organisation, on_delete=models.PROTECT, related_name="acquirer_settlements", verbose_name=_("acquirer")
    )
    merchant_count = models.PositiveIntegerField(_("merchants"), default=0)

    objects = AcquirerSettlementQuerySet.as_manager()

    class Meta:
        verbose_name = _("acquirer settlement")
        verbose_name_plural = _("acquirer settlements")
        ordering = ["-day", "acquirer__code"]
        constraints = [models.UniqueConstraint(fields=["acquirer", "day"], name="recon_as_unique_acquirer_day")]

    def __str__(self) -> str:
        return f"{self.day:%Y-%m-%d} {self.acquirer_id} {self.net}"


class FeeRate(models.Model):
    """The merchant discount rate of a card class: ``rate_bp`` basis points (1/10 000) of the amount, rounded half
    up to the fen, then held between ``min_fee`` and ``max_fee`` (fen; empty = no bound).

    A rate without a merchant is the default for every merchant without its own rate for that card class.
    """

    merchant = models.ForeignKey(
        Organisation,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="fee_rates",
        limit_choices_to={"kind": "merchant"},
        verbose_name=_("merchant"),
        help_text=_("Empty: the default rate of every merchant."),
    )
    card_class = models.CharField(_("card class"), max_length=8, choices=CardClass.choices)
    rate_bp = models.PositiveIntegerField(_("rate (basis points)"), help_text=_("38 means 0.38%."))
    min_fee = models.BigIntegerField(_("minimum fee (fen)"), default=0, validators=[MinValueValidator(0)])
    max_fee = models.BigIntegerField(_("maximum fee (fen)"), null=True, blank=True, validators=[MinValueValidator(0)])

    class Meta:
        verbose_name = _("fee rate")
        verbose_name_plural = _("fee rates")
        ordering = ["merchant_id", "card_class"]
        constraints = [
            models.UniqueConstraint(fields=["merchant", "card_class"], name="recon_fee_unique_merchant_card"),
            models.UniqueConstraint(
                fields=["card_class"], condition=Q(merchant__isnull=True), name="recon_fee_unique_default_card"
            ),
            models.CheckConstraint(name="recon_fee_min_nonneg", condition=Q(min_fee__gte=0)),
            models.CheckConstraint(
                name="recon_fee_max_above_min",
                condition=Q(max_fee__isnull=True) | Q(max_fee__gte=models.F("min_fee")),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.merchant_id or '*'} {self.card_class} {self.rate_bp}bp"


class WorkingDayOverride(models.Model):
    """A day the settlement calendar treats differently from the ``chinese_calendar`` package (it wins)."""

    day = models.DateField(_("day"), unique=True)
    is_working = models.BooleanField(_("working day"))
    note = models.CharField(_("note"), max_length=128, blank=True)

    class Meta:
        verbose_name = _("working-day override")
        verbose_name_plural = _("working-day overrides")
        ordering = ["day"]

    def __str__(self) -> str:
        return f"{self.day:%Y-%m-%d} {'working' if self.is_working else 'holiday'}"


def recon_storage_dir() -> Path:
    """Where generated files live: ``MEDIA_ROOT/reconciliation`` (never under the web root)."""
    return Path(settings.MEDIA_ROOT) / "reconciliation"


class ReconciliationFile(models.Model):
    """A generated file of a merchant (daily files, monthly statements) or an acquirer (clearing file).

    The bytes are a pure function of the closed results and the ledger, so a file deleted from disk is produced
    again with the same ``sha256``. ``day`` is set for daily files, ``month`` (its first day) for statements.
    ``language`` is the language of headers in friendly files, empty for the network-format zip.
    """

    organisation = models.ForeignKey(
        Organisation, on_delete=models.PROTECT, related_name="reconciliation_files", verbose_name=_("organisation")
    )
    kind = models.CharField(_("type"), max_length=16, choices=FileKind.choices)
    day = models.DateField(_("settlement day"), null=True, blank=True)
    month = models.DateField(_("month"), null=True, blank=True)
    language = models.CharField(_("language"), max_length=16, blank=True)
    name = models.CharField(_("file name"), max_length=128)
    size = models.PositiveBigIntegerField(_("size (bytes)"))
    sha256 = models.CharField(_("SHA-256"), max_length=64)
    generated_at = models.DateTimeField(_("generated"))

    objects = ReconciliationFileQuerySet.as_manager()

    class Meta:
        verbose_name = _("reconciliation file")
        verbose_name_plural = _("reconciliation files")
        ordering = ["-day", "-month", "organisation__code", "kind", "language"]
        constraints = [
            models.UniqueConstraint(
                fields=["organisation", "kind", "day", "language"],
                condition=Q(day__isnull=False),
                name="recon_file_unique_daily",
            ),
            models.UniqueConstraint(
                fields=["organisation", "kind", "month", "language"],
                condition=Q(month__isnull=False),
                name="recon_file_unique_monthly",
            ),
            models.CheckConstraint(
                name="recon_file_day_xor_month",
                condition=(Q(day__isnull=False) & Q(month__isnull=True))
                | (Q(day__isnull=True) & Q(month__isnull=False)),
            ),
        ]
        indexes = [models.Index(fields=["organisation", "-day"], name="recon_file_org_day")]

    def __str__(self) -> str:
        return self.name

    @property
    def relative_path(self) -> str:
        period = f"{self.day:%Y%m%d}" if self.day else f"{self.month:%Y%m}"
        lang = self.language or "raw"
        return f"{self.organisation.code}/{period}/{self.kind}-{lang}-{self.name}"

    @property
    def path(self) -> Path:
        return recon_storage_dir() / self.relative_path
