"""Upstream reconciliation: import runs of the network's ZM / ZME files, their records, and the discrepancies
found by matching them against the ledger, with the workbench's comments."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from payments.models import Transaction
from portal.accounts.models import Organisation

from .choices import DiscrepancyClass, DiscrepancyStatus, FileKind, RecordKind, Resolution, RunSource, RunStatus
from .querysets import DiscrepancyQuerySet, RunQuerySet


class ReconciliationRun(models.Model):
    """One import of an upstream file (a zip, or a single ZM / ZME file) and its matching against the ledger.

    A run either completes (records loaded, discrepancies created, totals set) or is a failure record alone
    (``status=failed`` with ``error``), written outside the import's transaction. ``sha256`` is unique per
    merchant and file kind among completed runs: the same file is never imported twice. Totals are fen; fee and
    settlement are signed from the merchant's side (D negative). ``class_totals`` maps each class (``matched`` and
    the discrepancy classes) to ``{"count": n, "amount": fen}``.
    """

    source = models.CharField(_("source"), max_length=16, choices=RunSource.choices)
    merchant = models.ForeignKey(
        Organisation,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="upstream_runs",
        verbose_name=_("merchant"),
    )
    mer_id = models.CharField(_("merchant number"), max_length=32, blank=True)
    settle_date = models.DateField(_("settlement date"), null=True, blank=True)
    file_kind = models.CharField(_("file kind"), max_length=8, choices=FileKind.choices, blank=True)
    file_name = models.CharField(_("file name"), max_length=255, blank=True)
    file_size = models.PositiveBigIntegerField(_("size (bytes)"), default=0)
    sha256 = models.CharField(_("SHA-256"), max_length=64, blank=True)
    status = models.CharField(_("status"), max_length=16, choices=RunStatus.choices)
    error_code = models.CharField(_("error code"), max_length=32, blank=True)
    error = models.TextField(_("error"), blank=True)
    earlier_run = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="+", verbose_name=_("earlier run")
    )
    line_errors = models.JSONField(_("line errors"), default=list, blank=True)
    error_count = models.PositiveIntegerField(_("malformed lines"), default=0)
    record_count = models.PositiveIntegerField(_("records"), default=0)
    amount_total = models.BigIntegerField(_("amount (fen)"), default=0)
    fee_total = models.BigIntegerField(_("fee (fen)"), default=0)
    settlement_total = models.BigIntegerField(_("settlement (fen)"), default=0)
    adjustment_count = models.PositiveIntegerField(_("adjustments"), default=0)
    adjustment_amount = models.BigIntegerField(_("adjustment amount (fen)"), default=0)
    adjustment_fee = models.BigIntegerField(_("adjustment fee (fen)"), default=0)
    adjustment_settlement = models.BigIntegerField(_("adjustment settlement (fen)"), default=0)
    class_totals = models.JSONField(_("totals per class"), default=dict, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("imported by"),
    )
    created_at = models.DateTimeField(_("created"), default=timezone.now)

    objects = RunQuerySet.as_manager()

    class Meta:
        verbose_name = _("reconciliation run")
        verbose_name_plural = _("reconciliation runs")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["merchant", "file_kind", "sha256"],
                condition=Q(status="completed"),
                name="recon_up_run_unique_file",
            ),
        ]
        indexes = [models.Index(fields=["merchant", "settle_date"], name="recon_up_run_merchant_day")]

    def __str__(self) -> str:
        return f"{self.mer_id} {self.settle_date} {self.status}"


class UpstreamRecord(models.Model):
    """One parsed line of a ZM (detail) or ZME (adjustment) file; the card number is masked as in the file.

    ``transaction`` is the ledger row it matched (set by the matching SQL), null for an unmatched line.

    A run writes up to millions of records in one statement, so the table carries only what the queries need: the
    ``(run, kind)`` index (it serves ``run`` alone too), the same over the unmatched records only (the import links
    nearly every record as it writes it, so that one stays small), and no database foreign keys (a deferred key
    checks every row at commit, one lookup each). Records are written only by the import, in the transaction that
    creates their run, and deleted with it (``CASCADE``, done by Django); ledger rows are never deleted.
    """

    run = models.ForeignKey(
        ReconciliationRun, on_delete=models.CASCADE, related_name="records", db_constraint=False, db_index=False
    )
    kind = models.CharField(_("kind"), max_length=4, choices=RecordKind.choices)
    line_no = models.PositiveIntegerField(_("line"))
    txn_code = models.CharField(_("transaction code"), max_length=3, blank=True)
    txn_type = models.CharField(_("transaction type"), max_length=2, blank=True)
    query_id = models.CharField(_("query ID"), max_length=21, blank=True)
    order_id = models.CharField(_("order ID"), max_length=40, blank=True)
    trace_no = models.CharField(_("trace number"), max_length=6, blank=True)
    trans_time = models.CharField(_("transmission time"), max_length=10, blank=True)
    transmitted_at = models.DateTimeField(_("transmitted at"), null=True, blank=True)
    card_masked = models.CharField(_("card number"), max_length=19, blank=True)
    card_type = models.CharField(_("card type"), max_length=2, blank=True)
    amount = models.BigIntegerField(_("amount (fen)"))
    merchant_fee = models.BigIntegerField(_("fee (fen)"), null=True, blank=True)
    settle_amount = models.BigIntegerField(_("settlement (fen)"), null=True, blank=True)
    orig_query_id = models.CharField(_("original query ID"), max_length=21, blank=True)
    biz_type = models.CharField(_("product type"), max_length=6, blank=True)
    transaction = models.ForeignKey(
        Transaction,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        db_constraint=False,
        db_index=False,
    )

    class Meta:
        verbose_name = _("upstream record")
        verbose_name_plural = _("upstream records")
        ordering = ["run", "kind", "line_no"]
        indexes = [
            models.Index(fields=["run", "kind"], name="recon_up_rec_run"),
            # The records no ledger row matched yet: the matching's second passes read only those.
            models.Index(fields=["run", "kind"], condition=Q(transaction__isnull=True), name="recon_up_rec_unmatched"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.line_no} {self.query_id}"


class LedgerFee(models.Model):
    """The fee the portal expects for a ledger transaction, per run (from ``RECON_LEDGER_FEE_PROVIDER``).

    The ledger holds no fee; when a provider is configured its fees are loaded here so the fee comparison is a join.
    """

    run = models.ForeignKey(ReconciliationRun, on_delete=models.CASCADE, related_name="+")
    transaction_id = models.BigIntegerField()
    fee = models.BigIntegerField()

    class Meta:
        indexes = [models.Index(fields=["run", "transaction_id"], name="recon_up_fee_run_txn")]

    def __str__(self) -> str:
        return f"{self.transaction_id} {self.fee}"


class Discrepancy(models.Model):
    """A difference between an upstream line and the ledger, for a person to resolve (差错处理).

    Amounts are fen; fees signed from the merchant's side. Status moves along ``choices.TRANSITIONS`` through
    ``services`` only; "adjust the ledger" goes through the approval engine (kind ``reconciliation.adjust``).
    """

    run = models.ForeignKey(ReconciliationRun, on_delete=models.PROTECT, related_name="discrepancies")
    cls = models.CharField(_("class"), max_length=16, choices=DiscrepancyClass.choices)
    merchant = models.ForeignKey(
        Organisation, on_delete=models.PROTECT, related_name="upstream_discrepancies", verbose_name=_("merchant")
    )
    settle_date = models.DateField(_("settlement date"))
    query_id = models.CharField(_("query ID"), max_length=21, blank=True)
    order_id = models.CharField(_("order ID"), max_length=40, blank=True)
    transaction = models.ForeignKey(
        Transaction, on_delete=models.PROTECT, null=True, blank=True, related_name="+", verbose_name=_("ledger")
    )
    record = models.ForeignKey(
        UpstreamRecord, on_delete=models.PROTECT, null=True, blank=True, related_name="+", verbose_name=_("upstream")
    )
    ledger_amount = models.BigIntegerField(_("ledger amount (fen)"), null=True, blank=True)
    upstream_amount = models.BigIntegerField(_("upstream amount (fen)"), null=True, blank=True)
    ledger_fee = models.BigIntegerField(_("ledger fee (fen)"), null=True, blank=True)
    upstream_fee = models.BigIntegerField(_("upstream fee (fen)"), null=True, blank=True)
    ledger_status = models.CharField(_("ledger status"), max_length=8, blank=True)
    status = models.CharField(
        _("status"), max_length=16, choices=DiscrepancyStatus.choices, default=DiscrepancyStatus.OPEN
    )
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("assignee"),
    )
    resolution = models.CharField(_("resolution"), max_length=16, choices=Resolution.choices, blank=True)
    reason = models.TextField(_("reason"), blank=True)
    approval_request_id = models.BigIntegerField(_("approval request"), null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("resolved by"),
    )
    resolved_at = models.DateTimeField(_("resolved"), null=True, blank=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    objects = DiscrepancyQuerySet.as_manager()

    class Meta:
        verbose_name = _("discrepancy")
        verbose_name_plural = _("discrepancies")
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["merchant", "status"], name="recon_up_disc_merchant"),
            models.Index(fields=["run", "cls"], name="recon_up_disc_run"),
        ]

    def __str__(self) -> str:
        return f"{self.cls} {self.query_id or self.order_id}"

    @property
    def amount(self) -> int:
        """The amount the discrepancy is about (upstream when known, else the ledger's)."""
        return self.upstream_amount if self.upstream_amount is not None else (self.ledger_amount or 0)

    def is_aged(self, now=None) -> bool:
        if self.status == DiscrepancyStatus.RESOLVED:
            return False
        days = settings.RECON_DISCREPANCY_AGE_DAYS
        return self.created_at < (now or timezone.now()) - timedelta(days=days)


class DiscrepancyComment(models.Model):
    """A note on a discrepancy (who looked, what they found)."""

    discrepancy = models.ForeignKey(Discrepancy, on_delete=models.CASCADE, related_name="comments")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    body = models.TextField(_("comment"))
    created_at = models.DateTimeField(_("created"), default=timezone.now)

    class Meta:
        verbose_name = _("discrepancy comment")
        verbose_name_plural = _("discrepancy comments")
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.discrepancy_id} {self.author_id}"
