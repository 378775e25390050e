"""Uploaded batch files, their lines, their status history and the order ids they hold."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from .choices import RELEASED, BatchStatus, FileFormat, LineStatus
from .querysets import BatchQuerySet


class Batch(models.Model):
    """One uploaded file of one kind (e.g. ``refund``) and its way through the pipeline.

    The raw file lives encrypted under ``MEDIA_ROOT/batches/<stored_name>`` (never the client's
    name); ``original_name`` is sanitised and for display only. The same content (``sha256``)
    for the same organisation and kind is refused while an earlier batch holding it is not
    cancelled, invalid, rejected or expired (a partial unique constraint enforces it under races).
    ``error_code``/``error_params`` carry a file-level problem, rendered in the viewer's language.
    """

    kind = models.CharField(_("kind"), max_length=32)
    organisation = models.ForeignKey(
        "accounts.Organisation", on_delete=models.PROTECT, related_name="batches", verbose_name=_("organisation")
    )
    merchant = models.ForeignKey(
        "accounts.Organisation",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="merchant_batches",
        verbose_name=_("merchant"),
    )
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", verbose_name=_("uploaded by")
    )
    original_name = models.CharField(_("file name"), max_length=128)
    stored_name = models.CharField(max_length=64, unique=True)
    file_format = models.CharField(_("format"), max_length=8, choices=FileFormat.choices)
    size = models.PositiveBigIntegerField(_("size (bytes)"))
    sha256 = models.CharField(_("SHA-256"), max_length=64)
    status = models.CharField(_("status"), max_length=24, choices=BatchStatus.choices, default=BatchStatus.UPLOADED)

    total_lines = models.PositiveIntegerField(_("lines"), default=0)
    valid_lines = models.PositiveIntegerField(_("valid lines"), default=0)
    invalid_lines = models.PositiveIntegerField(_("invalid lines"), default=0)
    processed_lines = models.PositiveIntegerField(_("processed lines"), default=0)
    succeeded_lines = models.PositiveIntegerField(_("succeeded lines"), default=0)
    failed_lines = models.PositiveIntegerField(_("failed lines"), default=0)
    total_amount = models.BigIntegerField(_("total amount (fen)"), default=0)
    valid_amount = models.BigIntegerField(_("valid amount (fen)"), default=0)
    succeeded_amount = models.BigIntegerField(_("succeeded amount (fen)"), default=0)
    # Processing chunk n holds the valid lines numbered n × chunk_size to (n + 1) × chunk_size − 1
    # (``BATCH_CHUNK_SIZE`` when the batch was validated; ``BatchLine.chunk_no`` is n).
    chunk_count = models.PositiveIntegerField(default=0)
    chunk_size = models.PositiveIntegerField(default=500)

    error_code = models.CharField(_("error"), max_length=64, blank=True)
    error_params = models.JSONField(default=dict, blank=True)
    # A fresh token per validation run: a stale run (a worker thought dead) stops at its next chunk.
    work_token = models.CharField(max_length=32, blank=True)
    # Set from the stream while validating, for the progress bar (bytes of the stored plaintext read).
    progress_bytes = models.PositiveBigIntegerField(default=0)

    approval_id = models.PositiveBigIntegerField(null=True, blank=True)
    result_name = models.CharField(max_length=64, blank=True)
    raw_deleted_at = models.DateTimeField(null=True, blank=True)

    created_at = models.DateTimeField(_("uploaded"), auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)
    validated_at = models.DateTimeField(_("validated"), null=True, blank=True)
    submitted_at = models.DateTimeField(_("submitted"), null=True, blank=True)
    approved_at = models.DateTimeField(_("approved"), null=True, blank=True)
    processing_started_at = models.DateTimeField(_("processing started"), null=True, blank=True)
    processed_at = models.DateTimeField(_("processed"), null=True, blank=True)

    objects = BatchQuerySet.as_manager()

    class Meta:
        verbose_name = _("batch")
        verbose_name_plural = _("batches")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["organisation", "kind", "sha256"],
                condition=~Q(status__in=sorted(RELEASED)),
                name="batch_unique_live_content",
            ),
        ]
        indexes = [models.Index(fields=["organisation", "kind", "-created_at"], name="batch_org_kind_created")]

    def __str__(self) -> str:
        return f"{self.kind} #{self.pk}"

    @property
    def progress_percent(self) -> int:
        """0–100 for the progress bar: bytes read while validating, lines done while processing."""
        if self.status == BatchStatus.VALIDATING:
            return min(99, int(self.progress_bytes * 100 / self.size)) if self.size else 0
        if self.status in {BatchStatus.APPROVED, BatchStatus.PROCESSING}:
            return min(99, int(self.processed_lines * 100 / self.valid_lines)) if self.valid_lines else 0
        if self.status == BatchStatus.UPLOADED:
            return 0
        return 100


class BatchStatusChange(models.Model):
    """One transition of a batch: who (None for a job), from, to, when, why."""

    batch = models.ForeignKey(Batch, on_delete=models.CASCADE, related_name="status_changes")
    from_status = models.CharField(max_length=24)
    to_status = models.CharField(max_length=24)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    reason = models.CharField(max_length=255, blank=True)
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.batch_id}: {self.from_status} → {self.to_status}"

    @property
    def from_label(self) -> str:
        return str(BatchStatus(self.from_status).label) if self.from_status in BatchStatus.values else ""

    @property
    def to_label(self) -> str:
        return str(BatchStatus(self.to_status).label) if self.to_status in BatchStatus.values else self.to_status


class BatchLine(models.Model):
    """One line of a batch file. ``order_id`` is the stable id sent to the gateway for this line,
    so a retried or duplicated send is recognised there. ``status`` only moves forward
    (``choices.LINE_TRANSITIONS``) through guarded updates. ``data`` holds the parsed columns
    (a kind never stores a full card number in it: masked or keyed hash only); ``ref`` is an
    indexed key the kind may set for set-based checks (e.g. the original payment's query id)."""

    # Written a million at a time by the pipeline only (for the batch row it holds locked), deleted with
    # the batch by the ORM's cascade: no index of their own (``(batch, line_no)`` serves the batch) and no
    # database constraint, whose per-row check at commit costs each line more than its own write. A
    # line's merchant is its batch's, which ``Batch.merchant`` protects.
    batch = models.ForeignKey(
        Batch, on_delete=models.CASCADE, related_name="lines", db_index=False, db_constraint=False
    )
    line_no = models.PositiveIntegerField()
    order_id = models.CharField(max_length=64, blank=True)
    merchant = models.ForeignKey(
        "accounts.Organisation",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )
    amount = models.BigIntegerField(default=0)
    ref = models.CharField(max_length=64, blank=True)
    data = models.JSONField(default=dict)
    status = models.CharField(max_length=16, choices=LineStatus.choices, default=LineStatus.PENDING)
    chunk_no = models.PositiveIntegerField(null=True, blank=True)
    error_code = models.CharField(max_length=64, blank=True)
    error_column = models.CharField(max_length=64, blank=True)
    error_params = models.JSONField(default=dict, blank=True)
    result = models.JSONField(default=dict, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["line_no"]
        constraints = [models.UniqueConstraint(fields=["batch", "line_no"], name="batchline_unique_line_no")]
        indexes = [
            # Partial, so that a valid line (the many, written at validation) does not enter it: the lines
            # past ``valid`` (errors, outcomes). Processing reads a chunk's lines by line number.
            models.Index(
                fields=["batch", "status"], name="batchline_batch_status", condition=~Q(status=LineStatus.VALID)
            ),
            # The cap check looks up the lines of an original across every batch (refunds.selectors).
            models.Index(fields=["ref"], name="batchline_ref"),
        ]

    def __str__(self) -> str:
        return f"{self.batch_id}:{self.line_no}"


class BatchOrderId(models.Model):
    """The order ids batch lines hold, one row per (family, merchant, order id): a second line
    with the same merchant order id, in this file or any other, is refused pointing at the
    first. ``family`` groups kinds sharing one order-id space (e.g. ``refund``). Released when the
    holding batch is cancelled, rejected, expired or invalid (nothing was sent)."""

    # The key is the primary key: no surrogate id, whose index each of a million holds would pay for.
    pk = models.CompositePrimaryKey("family", "merchant", "order_id")
    family = models.CharField(max_length=32)
    # As for ``BatchLine``: written with the lines, no database constraint and no index on the batch (a
    # batch's holds are released through its lines: ``services._release_order_ids``); the merchant is the
    # holding batch's, protected there.
    merchant = models.ForeignKey(
        "accounts.Organisation", on_delete=models.CASCADE, related_name="+", db_index=False, db_constraint=False
    )
    order_id = models.CharField(max_length=64)
    batch = models.ForeignKey(Batch, on_delete=models.CASCADE, related_name="+", db_index=False, db_constraint=False)
    line_no = models.PositiveIntegerField()

    def __str__(self) -> str:
        return f"{self.family}:{self.merchant_id}:{self.order_id}"
