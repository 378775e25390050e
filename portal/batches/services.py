"""Writes of the batch pipeline: upload, submit, cancel, the review hooks, and the background
bodies of validation and processing (``ingest``). The one path for the UI, the API and jobs.

Each user action runs in one transaction with its audit event; background work is enqueued on
commit; every status change goes through ``batch_transition`` (compare-and-set + a status-change row).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable
from datetime import timedelta
from typing import IO

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, connection, transaction
from django.db.models import Count, F, Q, Sum
from django.utils import timezone

from portal.accounts.models import Organisation, OrganisationKind
from portal.accounts.querysets import visible_organisation_ids
from portal.audit.services import audit_record
from portal.core.transitions import move_status

from . import storage
from .approval import OBJECT_TYPE, batch_content_hash
from .choices import CANCELLABLE, TRANSITIONS, BatchStatus, LineStatus, line_previous
from .errors import render_message
from .models import Batch, BatchLine, BatchOrderId, BatchStatusChange
from .registry import BatchKind, FileRejected, LineResult, UnknownKind, get_kind
from .uploads import detect_format, sanitise_name

logger = logging.getLogger(__name__)


class BatchError(Exception):
    """A refused action: a message code (``errors.MESSAGES`` or the kind's), its params, the HTTP
    status the web and API layers answer, and the earlier batch when it is a duplicate."""

    def __init__(self, code: str, params: dict | None = None, *, status: int = 400, batch_id: int | None = None):
        super().__init__(code)
        self.code = code
        self.params = params or {}
        self.status = status
        self.batch_id = batch_id

    @property
    def message(self) -> str:
        return render_message(self.code, self.params)

    def __str__(self) -> str:
        return self.message


NOT_CANCELLABLE = "not_cancellable"
NOT_SUBMITTABLE = "not_submittable"


# --- the status helper ------------------------------------------------------------------------------


def batch_transition(
    *, batch_id: int, old: Iterable[str], new: str, actor=None, reason: str = "", guard: dict | None = None, **fields
) -> str | None:
    """Move batch ``batch_id`` to ``new`` if its status is one of ``old`` and ``TRANSITIONS`` allows it;
    returns the status it left (None when it did not move). A compare-and-set on the status (plus
    ``guard`` filters), and a ``BatchStatusChange`` row, in the caller's transaction."""
    return move_status(
        Batch,
        batch_id,
        old=old,
        new=new,
        transitions=TRANSITIONS,
        guard=guard,
        record=lambda current, to: BatchStatusChange.objects.create(
            batch_id=batch_id, from_status=current, to_status=to, actor=actor, reason=(reason or "")[:255]
        ),
        **fields,
    )


def _audit(action: str, batch: Batch, *, actor=None, **details) -> None:
    audit_record(
        action=action,
        actor=actor,
        organisation=batch.organisation,
        obj=batch,
        details={"kind": batch.kind, "status": batch.status, **details},
    )


def _release_order_ids(batch_id: int) -> None:
    """Free the order ids the batch's lines hold (call it before deleting lines). On PostgreSQL they are
    found through the lines that may hold one (by the unique (family, merchant, order id) index): the
    table has no index on the batch, which each of a file's million lines would pay for at validation."""
    if connection.vendor != "postgresql":
        BatchOrderId.objects.filter(batch_id=batch_id).delete()
        return
    batch = Batch.objects.filter(pk=batch_id).values("kind", "merchant_id", "organisation_id").first()
    if batch is None:
        return
    try:
        family = get_kind(batch["kind"]).family
    except UnknownKind:
        family = batch["kind"]
    with connection.cursor() as cursor:
        cursor.execute(
            f"DELETE FROM {BatchOrderId._meta.db_table} h USING {BatchLine._meta.db_table} l "
            "WHERE l.batch_id = %s AND l.status <> %s AND h.family = %s "
            "AND h.merchant_id = coalesce(l.merchant_id, %s) AND h.order_id = l.order_id AND h.batch_id = %s",
            [batch_id, LineStatus.INVALID.value, family, batch["merchant_id"] or batch["organisation_id"], batch_id],
        )


# --- upload ----------------------------------------------------------------------------------------


def _resolve_merchant(actor, kind: BatchKind, merchant: Organisation | None) -> Organisation | None:
    org = actor.organisation
    if org.kind == OrganisationKind.MERCHANT:
        if merchant is not None and merchant.pk != org.pk:
            raise BatchError("merchant_not_visible", status=404)
        return org
    if merchant is not None:
        visible = visible_organisation_ids(actor)
        if merchant.kind != OrganisationKind.MERCHANT or (
            visible is not None and not visible.filter(pk=merchant.pk).exists()
        ):
            raise BatchError("merchant_not_visible", status=404)
        return merchant
    if kind.requires_merchant:
        raise BatchError("merchant_required")
    return None


def batch_upload(*, actor, kind: str, uploaded_file, merchant: Organisation | None = None) -> Batch:
    """Store an uploaded file as a new batch of ``kind`` for the actor's organisation.

    Checks, in order, before anything is kept: the kind's upload permission, the merchant (a merchant
    uploads for itself; an acquirer for one of its merchants, or for several when the kind allows),
    the size (``UPLOAD_MAX_BYTES``, counted while streaming too), the type by extension *and*
    content (zip-bomb checks for .xlsx), then the content hash: the same content for the same
    organisation and kind is refused naming the earlier batch (also under a race, by the database
    constraint). The file is stored encrypted under a generated name. Audited as ``batch.upload``;
    validation is enqueued on commit. Refusals raise ``BatchError`` and leave nothing behind.
    """
    kind_obj = get_kind(kind)
    if not actor.has_portal_perm(kind_obj.upload_perm):
        raise PermissionDenied
    merchant = _resolve_merchant(actor, kind_obj, merchant)
    limit = settings.UPLOAD_MAX_BYTES
    too_large = BatchError("file_too_large", {"limit_mb": limit // (1024 * 1024)}, status=413)
    if uploaded_file.size is not None and uploaded_file.size > limit:
        raise too_large
    name = sanitise_name(uploaded_file.name)
    try:
        fmt = detect_format(name, uploaded_file)
    except FileRejected as exc:
        raise BatchError(exc.code, exc.params) from None
    if fmt not in kind_obj.formats:
        raise BatchError("file_type_for_kind")

    stored_name = storage.new_name()
    digest = hashlib.sha256()
    size = 0
    try:
        with storage.writer(stored_name) as out:
            uploaded_file.seek(0)
            for block in uploaded_file.chunks():
                size += len(block)
                if size > limit:
                    raise too_large
                digest.update(block)
                out.write(block)
        if size == 0:
            raise BatchError("file_empty")
        sha256 = digest.hexdigest()
        earlier = _live_duplicate(actor.organisation_id, kind, sha256)
        if earlier is not None:
            raise BatchError("file_duplicate", {"batch_id": earlier}, status=409, batch_id=earlier)
        try:
            with transaction.atomic():
                batch = Batch.objects.create(
                    kind=kind,
                    organisation=actor.organisation,
                    merchant=merchant,
                    uploaded_by=actor,
                    original_name=name,
                    stored_name=stored_name,
                    file_format=fmt,
                    size=size,
                    sha256=sha256,
                )
                BatchStatusChange.objects.create(batch=batch, from_status="", to_status=batch.status, actor=actor)
                _audit("batch.upload", batch, actor=actor, file_name=name, size=size, sha256=sha256, format=fmt)
                transaction.on_commit(lambda: _enqueue("validate_batch", batch.pk))
        except IntegrityError:
            earlier = _live_duplicate(actor.organisation_id, kind, sha256)
            raise BatchError("file_duplicate", {"batch_id": earlier}, status=409, batch_id=earlier) from None
    except BaseException:
        storage.delete(stored_name)
        raise
    return batch


def _live_duplicate(organisation_id: int, kind: str, sha256: str) -> int | None:
    from .choices import RELEASED

    return (
        Batch.objects.filter(organisation_id=organisation_id, kind=kind, sha256=sha256)
        .exclude(status__in=RELEASED)
        .order_by("pk")
        .values_list("pk", flat=True)
        .first()
    )


def _enqueue(task_name: str, *args) -> None:
    from . import tasks

    getattr(tasks, task_name).delay(*args)


# --- submit, cancel, review hooks ------------------------------------------------------------------


def _check_actor(actor, batch: Batch, perm: str) -> None:
    if not Batch.objects.visible_to(actor).filter(pk=batch.pk).exists():
        raise BatchError("not_found", status=404)
    if not actor.has_portal_perm(perm):
        raise PermissionDenied


def _approval_organisation(batch: Batch) -> Organisation:
    if batch.merchant_id:
        return batch.merchant
    return batch.organisation


def batch_submit(*, actor, batch: Batch) -> Batch:
    """Send a validated batch with at least one valid line for review: ``pending_review`` and an
    approval request bound to the batch's content hash (file SHA-256 + counts and amounts). A kind
    without an approval kind is approved at once. Audited as ``batch.submit``."""
    kind = get_kind(batch.kind)
    _check_actor(actor, batch, kind.upload_perm)
    with transaction.atomic():
        batch = Batch.objects.select_for_update().get(pk=batch.pk)
        if batch.status != BatchStatus.VALIDATED or batch.valid_lines == 0:
            raise BatchError(NOT_SUBMITTABLE, status=409)
        now = timezone.now()
        batch_transition(
            batch_id=batch.pk,
            old={BatchStatus.VALIDATED},
            new=BatchStatus.PENDING_REVIEW,
            actor=actor,
            submitted_at=now,
        )
        batch.refresh_from_db()
        if kind.approval_kind:
            from portal.approvals.services import approval_submit

            request = approval_submit(
                actor=actor,
                kind=kind.approval_kind,
                obj_type=OBJECT_TYPE,
                obj_id=batch.pk,
                organisation=_approval_organisation(batch),
                amount=batch.valid_amount,
                content_hash=batch_content_hash(batch),
                summary=f"{kind.label} #{batch.pk}: {batch.valid_lines} / {batch.valid_amount}",
            )
            Batch.objects.filter(pk=batch.pk).update(approval_id=request.pk)
            batch.approval_id = request.pk
        _audit("batch.submit", batch, actor=actor, valid_lines=batch.valid_lines, valid_amount=batch.valid_amount)
        if not kind.approval_kind:
            batch_on_approved(batch_id=batch.pk, approval=None)
    batch.refresh_from_db()
    return batch


def batch_cancel(*, actor, batch: Batch, reason: str = "") -> Batch:
    """Withdraw a batch until it is approved (uploaded, validating, validated or pending review);
    a pending approval request is voided with it and the batch's order ids are released. Later
    statuses raise ``BatchError(not_cancellable)``. Audited as ``batch.cancel``."""
    kind = get_kind(batch.kind)
    _check_actor(actor, batch, kind.upload_perm)
    with transaction.atomic():
        left = batch_transition(
            batch_id=batch.pk, old=CANCELLABLE, new=BatchStatus.CANCELLED, actor=actor, reason=reason
        )
        if left is None:
            raise BatchError(NOT_CANCELLABLE, status=409)
        if left == BatchStatus.PENDING_REVIEW and kind.approval_kind:
            from portal.approvals.services import approval_void_for_object

            approval_void_for_object(actor=actor, obj_type=OBJECT_TYPE, obj_id=batch.pk, reason="batch cancelled")
        _release_order_ids(batch.pk)
        batch.refresh_from_db()
        _audit("batch.cancel", batch, actor=actor, previous=left, reason=reason)
    return batch


def batch_on_approved(*, batch_id: int | None, approval=None) -> bool:
    """Approval hook (inside the approving transaction): ``pending_review`` → ``approved``, processing
    enqueued on commit. Returns False (and does nothing) if the batch is no longer pending review."""
    if batch_id is None:
        return False
    left = batch_transition(
        batch_id=batch_id, old={BatchStatus.PENDING_REVIEW}, new=BatchStatus.APPROVED, approved_at=timezone.now()
    )
    if left is None:
        return False
    batch = Batch.objects.select_related("organisation").get(pk=batch_id)
    _audit("batch.approved", batch, approval=getattr(approval, "pk", None))
    transaction.on_commit(lambda: _enqueue("process_batch", batch_id))
    return True


def batch_on_review_ended(*, batch_id: int | None, to_status: str, approval=None) -> bool:
    """Approval hook for a rejected, expired, voided or cancelled request: the batch leaves
    ``pending_review`` for ``to_status`` and releases its order ids. A no-op when it already left."""
    if batch_id is None:
        return False
    reason = getattr(approval, "status_reason", "") or ""
    left = batch_transition(batch_id=batch_id, old={BatchStatus.PENDING_REVIEW}, new=to_status, reason=reason)
    if left is None:
        return False
    _release_order_ids(batch_id)
    batch = Batch.objects.select_related("organisation").get(pk=batch_id)
    _audit(f"batch.{to_status}", batch, approval=getattr(approval, "pk", None))
    return True


# --- the original file -----------------------------------------------------------------------------


def batch_original_open(*, actor, batch: Batch) -> IO[bytes]:
    """Open the uploaded file of ``batch`` for ``actor`` to download, decrypted, as a binary stream the
    caller streams out and closes. The batch must be visible to the actor (else ``BatchError`` 404) and the
    actor must hold the kind's view permission and its upload or the review permission
    (``selectors.original_download_allowed``; else ``PermissionDenied``); a file past the retention purge
    (``raw_deleted_at``) or gone from storage is a ``BatchError`` 404. Audited as
    ``batch.download_original`` (name, size and SHA-256, never content) once the file is open, so a
    refusal or a missing file leaves no event."""
    from .selectors import original_download_allowed

    kind = get_kind(batch.kind)
    current = Batch.objects.visible_to(actor).select_related("organisation").filter(pk=batch.pk).first()
    if current is None:
        raise BatchError("not_found", status=404)
    if not original_download_allowed(actor, kind):
        raise PermissionDenied
    if current.raw_deleted_at is not None or not storage.exists(current.stored_name):
        raise BatchError("not_found", status=404)
    stream = storage.open_plaintext(current.stored_name)
    try:
        with transaction.atomic():
            _audit(
                "batch.download_original",
                current,
                actor=actor,
                file_name=current.original_name,
                size=current.size,
                sha256=current.sha256,
            )
    except BaseException:
        stream.close()
        raise
    return stream


# --- processing results ----------------------------------------------------------------------------


def batch_line_record(*, line: BatchLine, outcome: LineResult) -> bool:
    """Record the outcome of sending ``line``, forward only (``processing``/``sent`` → final): a
    guarded update of the line and F() updates of the batch's counters, in one transaction.
    False when the line had already moved on (a duplicate)."""
    status = outcome.status
    if status not in {LineStatus.SENT, LineStatus.SUCCEEDED, LineStatus.FAILED}:
        raise ValueError(f"not a line outcome: {status}")
    with transaction.atomic():
        previous = (
            BatchLine.objects.filter(pk=line.pk, status__in=line_previous(status))
            .values_list("status", flat=True)
            .first()
        )
        if previous is None:
            return False
        moved = BatchLine.objects.filter(pk=line.pk, status=previous).update(
            status=status, result=outcome.result or {}, updated_at=timezone.now()
        )
        if not moved:
            return False
        counters: dict = {}
        if previous == LineStatus.PROCESSING:
            counters["processed_lines"] = F("processed_lines") + 1
        if status == LineStatus.SUCCEEDED:
            counters["succeeded_lines"] = F("succeeded_lines") + 1
            counters["succeeded_amount"] = F("succeeded_amount") + line.amount
        elif status == LineStatus.FAILED:
            counters["failed_lines"] = F("failed_lines") + 1
        if counters:
            Batch.objects.filter(pk=line.batch_id).update(**counters)
    line.status = status
    line.result = outcome.result or {}
    return True


def batch_line_record_outcome(*, line_id: int, status: str, result: dict | None = None) -> bool:
    """The final outcome of a line left ``sent`` (a notification or a query answered later); the
    batch finishes when it was the last one in flight."""
    line = BatchLine.objects.get(pk=line_id)
    recorded = batch_line_record(line=line, outcome=LineResult(status=status, result=result or {}))
    if recorded:
        batch_finish_if_done(batch_id=line.batch_id)
    return recorded


def batch_finish_if_done(*, batch_id: int) -> str | None:
    """Finish a processing batch once no line is valid, processing or sent: exact counters from
    the lines, the result file written by the kind (stored encrypted), then ``completed`` (every
    valid line succeeded), ``failed`` (none did) or ``partially_completed``. Audited as
    ``batch.completed``. Safe to call concurrently: one caller wins the compare-and-set."""
    batch = Batch.objects.filter(pk=batch_id).first()
    if batch is None or batch.status != BatchStatus.PROCESSING:
        return None
    # Two probes, one per partial index (``valid``/``processing`` by chunk, ``sent`` by status).
    lines = BatchLine.objects.filter(batch_id=batch_id)
    if (
        lines.filter(status__in=[LineStatus.VALID, LineStatus.PROCESSING]).exists()
        or lines.filter(status=LineStatus.SENT).exists()
    ):
        return None
    totals = BatchLine.objects.filter(batch_id=batch_id).aggregate(
        succeeded=Count("pk", filter=Q(status=LineStatus.SUCCEEDED)),
        failed=Count("pk", filter=Q(status=LineStatus.FAILED)),
        succeeded_amount=Sum("amount", filter=Q(status=LineStatus.SUCCEEDED)),
    )
    succeeded, failed = totals["succeeded"], totals["failed"]
    if succeeded and not failed:
        final = BatchStatus.COMPLETED
    elif succeeded:
        final = BatchStatus.PARTIALLY_COMPLETED
    else:
        final = BatchStatus.FAILED
    result_name = _write_result(batch)
    with transaction.atomic():
        left = batch_transition(
            batch_id=batch_id,
            old={BatchStatus.PROCESSING},
            new=final,
            processed_at=timezone.now(),
            result_name=result_name,
            succeeded_lines=succeeded,
            failed_lines=failed,
            processed_lines=succeeded + failed,
            succeeded_amount=totals["succeeded_amount"] or 0,
        )
        if left is None:
            transaction.on_commit(lambda: storage.delete(result_name))
            return None
        batch.refresh_from_db()
        _audit("batch.completed", batch, succeeded_lines=succeeded, failed_lines=failed)
    return final


def _write_result(batch: Batch) -> str:
    import shutil
    import tempfile

    kind = get_kind(batch.kind)
    name = storage.new_name()
    lines = BatchLine.objects.filter(batch_id=batch.pk).order_by("line_no").iterator(chunk_size=2000)
    with tempfile.TemporaryFile() as tmp:
        kind.write_result(batch, batch.file_format, lines, tmp)
        tmp.seek(0)
        with storage.writer(name) as out:
            shutil.copyfileobj(tmp, out, storage.CHUNK)
    return name


# --- retention -------------------------------------------------------------------------------------


def batch_purge_raw(*, now=None) -> int:
    """Delete raw uploads older than ``BATCH_RAW_RETENTION_DAYS`` (they may hold card numbers; the
    parsed lines stay). A batch still waiting for validation keeps its file. Audited per batch as
    ``batch.raw_purged``. Returns how many files were deleted."""
    now = now or timezone.now()
    cutoff = now - timedelta(days=settings.BATCH_RAW_RETENTION_DAYS)
    due = Batch.objects.filter(raw_deleted_at__isnull=True, created_at__lt=cutoff).exclude(
        status__in=[BatchStatus.UPLOADED, BatchStatus.VALIDATING]
    )
    count = 0
    for batch in due.select_related("organisation").iterator():
        with transaction.atomic():
            if not Batch.objects.filter(pk=batch.pk, raw_deleted_at__isnull=True).update(raw_deleted_at=now):
                continue
            _audit("batch.raw_purged", batch)
            transaction.on_commit(lambda name=batch.stored_name: storage.delete(name))
        count += 1
    return count


# The background bodies live in their own modules; they are services too.
def batch_validate(*, batch_id: int) -> str | None:
    """See ``ingest.batch_validate``."""
    from .ingest import batch_validate as run

    return run(batch_id=batch_id)


def batch_process(*, batch_id: int) -> bool:
    """See ``processing.batch_process``."""
    from .processing import batch_process as run

    return run(batch_id=batch_id)


def batch_process_chunk(*, batch_id: int, chunk_no: int) -> int:
    """See ``processing.batch_process_chunk``."""
    from .processing import batch_process_chunk as run

    return run(batch_id=batch_id, chunk_no=chunk_no)
