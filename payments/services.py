"""Ledger writes. The notification receiver, the reconciliation import and the sandbox all call
``ledger_record``; nothing else creates or changes a transaction (the benchmark bulk loader aside)."""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
from datetime import date, datetime, timedelta
from types import SimpleNamespace

from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.db.models.functions import Greatest
from django.http import QueryDict
from django.utils import timezone, translation

from portal.accounts.models import Organisation
from portal.accounts.roles import Perm
from portal.audit.services import audit_record

from .cards import card_hash, looks_like_pan, mask_pan, normalise_pan
from .choices import EXPORT_TRANSITIONS, REVERSAL_TYPES, TRANSITIONS, ExportFormat, ExportStatus, TxnSource, TxnStatus
from .models import ExportJob, Transaction, export_storage_dir
from .settlement import settlement_date_for

logger = logging.getLogger(__name__)


class LedgerConflictError(Exception):
    """A message contradicts what the ledger already holds (other merchant or amount for the
    same queryId, or a reversal beyond the original's amount). Nothing was written."""


# Fields a later message may fill in or correct when it moves a pending row forward.
_UPDATABLE = ("resp_code", "resp_msg", "trace_no", "trace_time", "card_type", "settle_date")


def ledger_record(
    *,
    merchant: Organisation,
    order_id: str,
    txn_time: datetime,
    txn_type: str,
    amount: int,
    status: str,
    source: str = TxnSource.NOTIFICATION,
    query_id: str | None = None,
    txn_sub_type: str = "01",
    biz_type: str = "000201",
    channel_type: str = "07",
    access_type: str = "0",
    currency: str = "156",
    resp_code: str = "",
    resp_msg: str = "",
    trace_no: str = "",
    trace_time: str = "",
    settle_date: date | None = None,
    orig_query_id: str = "",
    card_number: str = "",
    card_type: str = "",
    req_reserved: str = "",
    actor=None,
) -> tuple[Transaction, bool]:
    """Record one transaction idempotently; return ``(transaction, created)``.

    The key is ``query_id`` (else the merchant's ``order_id``). A repeated message changes
    nothing. A status moves only forward along ``choices.TRANSITIONS`` (pending → success /
    failed); a message trying to move it back is ignored. A successful void or refund adds its
    amount to the original's ``refunded_amount`` exactly once. ``card_number`` is masked and
    hashed here and never stored. Creation and status changes are audited in the same transaction.
    """
    if timezone.is_naive(txn_time):
        raise ValueError("txn_time must be aware")
    if amount <= 0:
        raise ValueError("amount must be positive")
    if status not in TxnStatus.values:
        raise ValueError(f"unknown status {status!r}")
    query_id = query_id or None
    pan = normalise_pan(card_number)
    fields = {
        "resp_code": resp_code,
        "resp_msg": resp_msg[:255],
        "trace_no": trace_no,
        "trace_time": trace_time,
        "card_type": card_type,
        "settle_date": settle_date or settlement_date_for(txn_time),
    }
    for attempt in range(2):
        try:
            with transaction.atomic():
                existing = _find_existing(merchant=merchant, order_id=order_id, query_id=query_id)
                if existing is not None:
                    _check_same_transaction(existing, merchant=merchant, amount=amount, txn_type=txn_type)
                    _advance(existing, status=status, query_id=query_id, fields=fields, actor=actor)
                    return existing, False
                orig = None
                if orig_query_id:
                    orig = (
                        Transaction.objects.select_for_update()
                        .filter(query_id=orig_query_id, merchant=merchant)
                        .first()
                    )
                txn = Transaction.objects.create(
                    merchant=merchant,
                    acquirer_id=merchant.acquirer_id,
                    order_id=order_id,
                    txn_time=txn_time,
                    txn_type=txn_type,
                    txn_sub_type=txn_sub_type,
                    biz_type=biz_type,
                    channel_type=channel_type,
                    access_type=access_type,
                    amount=amount,
                    currency=currency,
                    status=status,
                    query_id=query_id,
                    orig_query_id=orig_query_id,
                    orig=orig,
                    card_masked=mask_pan(pan) if pan else "",
                    card_hash=card_hash(pan) if pan else "",
                    req_reserved=req_reserved,
                    source=source,
                    **fields,
                )
                if status == TxnStatus.SUCCESS:
                    _apply_reversal(txn)
                audit_record(
                    action="transaction.recorded",
                    actor=actor,
                    actor_repr=None if actor else f"ledger:{source}",
                    organisation=merchant,
                    obj=txn,
                    details={"order_id": order_id, "query_id": query_id, "txn_type": txn_type, "status": status},
                )
                return txn, True
        except IntegrityError:
            # A concurrent copy of the same message won the insert: the second pass finds it.
            if attempt:
                raise
    raise AssertionError("unreachable")


def _find_existing(*, merchant, order_id: str, query_id: str | None) -> Transaction | None:
    qs = Transaction.objects.select_for_update()
    if query_id:
        found = qs.filter(query_id=query_id).first()
        if found is not None:
            return found
    return qs.filter(merchant=merchant, order_id=order_id).first()


def _check_same_transaction(existing: Transaction, *, merchant, amount: int, txn_type: str) -> None:
    if existing.merchant_id != merchant.pk or existing.amount != amount or existing.txn_type != txn_type:
        raise LedgerConflictError(f"transaction {existing.pk} differs from the message (merchant, amount or type)")


def _advance(txn: Transaction, *, status: str, query_id: str | None, fields: dict, actor) -> None:
    """Move ``txn`` to ``status`` if the transition map allows it; otherwise change nothing."""
    updates: dict = {}
    if query_id and not txn.query_id:
        updates["query_id"] = query_id
    if status != txn.status:
        if status not in TRANSITIONS[txn.status]:
            logger.info("ledger: ignored %s -> %s for transaction %s", txn.status, status, txn.pk)
            return
        updates["status"] = status
        updates.update({k: v for k, v in fields.items() if v})
    if not updates:
        return
    old_status = txn.status
    # Compare-and-set on the status we read, under the row lock.
    changed = Transaction.objects.filter(pk=txn.pk, status=old_status).update(**updates, updated_at=timezone.now())
    if not changed:
        return
    txn.refresh_from_db()
    if "status" in updates:
        if txn.status == TxnStatus.SUCCESS:
            _apply_reversal(txn)
        audit_record(
            action="transaction.status_changed",
            actor=actor,
            actor_repr=None if actor else f"ledger:{txn.source}",
            organisation=txn.merchant,
            obj=txn,
            details={"from": old_status, "to": txn.status, "resp_code": txn.resp_code},
        )


def _apply_reversal(txn: Transaction) -> None:
    """Add a successful void / refund to its original's ``refunded_amount`` (guarded, once)."""
    if txn.txn_type not in REVERSAL_TYPES or txn.orig_id is None:
        return
    updated = Transaction.objects.filter(pk=txn.orig_id, refunded_amount__lte=F("amount") - txn.amount).update(
        refunded_amount=F("refunded_amount") + txn.amount, updated_at=timezone.now()
    )
    if not updated:
        raise LedgerConflictError(f"reversal {txn.order_id} exceeds what is left of the original")


def ledger_export_record(*, actor, rows: int, file_format: str, encoding: str, filters: dict) -> None:
    """Audit one detail download (action ``transaction.export``) with its row count and filter."""
    with transaction.atomic():
        audit_record(
            action="transaction.export",
            actor=actor,
            object_type="payments.transaction",
            details={"rows": rows, "format": file_format, "encoding": encoding, "filter": filters},
        )


# --- background downloads ------------------------------------------------------------------------

EXPORT_KEEP = timedelta(days=7)
# A running job whose progress has not moved for this long lost its worker and may be claimed again.
EXPORT_STALE_AFTER = timedelta(hours=1)
_JOB_ACTOR = "job:export"


class ExportError:
    """Why a background download failed (codes stored on the job; the pages translate them)."""

    PERMISSION = "permission"
    INVALID_FILTER = "invalid_filter"
    TOO_MANY_ROWS = "too_many_rows"
    INTERNAL = "internal"


def _export_set_status(job_id, *, old: str, new: str, extra: Q | None = None, **fields) -> bool:
    """Compare-and-set ``old → new`` (checked against ``EXPORT_TRANSITIONS``); True if this call won."""
    if new not in EXPORT_TRANSITIONS[old]:
        raise ValueError(f"export job cannot go from {old} to {new}")
    qs = ExportJob.objects.filter(pk=job_id, status=old)
    if extra is not None:
        qs = qs.filter(extra)
    return bool(qs.update(status=new, **fields))


def export_request(*, actor, params: dict, fmt: str, rows_total: int = 0, description: dict | None = None) -> ExportJob:
    """Queue a background detail download of ``params`` (history-mode filter parameters, see
    ``TransactionFilterSet.job_params``) for ``actor``; audited ``transaction.export_requested``.

    The job is handed to a worker after commit. ``params`` must not hold a full card number.
    """
    if fmt not in ExportFormat.values:
        raise ValueError(f"unknown export format {fmt!r}")
    for key, value in params.items():
        if looks_like_pan(normalise_pan(str(value))):
            raise ValueError(f"parameter {key} looks like a card number")
    with transaction.atomic():
        job = ExportJob.objects.create(
            user=actor,
            organisation=actor.organisation,
            params={str(k): str(v) for k, v in params.items()},
            description=description or {},
            file_format=fmt,
            language=translation.get_language() or "",
            rows_total=rows_total,
        )
        audit_record(
            action="transaction.export_requested",
            actor=actor,
            obj=job,
            details={"rows": rows_total, "format": fmt, "filter": description or {}},
        )
        from .tasks import run_export

        job_id = str(job.pk)
        transaction.on_commit(lambda: run_export.delay(job_id), robust=True)
    return job


def export_run(*, job_id) -> str:
    """Prepare the file of job ``job_id`` (what the ``run_export`` task does); idempotent.

    Claims the job by compare-and-set (queued → running, or a running job whose heartbeat is
    stale); a job that is not claimable is left alone (``"skipped"``). The filter is rebuilt under
    the requester's current scope and permissions, rows are streamed into
    ``MEDIA_ROOT/exports/<id>`` with progress saved as it goes, and the job ends ready (kept 7 days)
    or failed with a reason. Returns the final status.
    """
    now = timezone.now()
    claimable = Q(status=ExportStatus.QUEUED) | Q(
        status=ExportStatus.RUNNING, heartbeat_at__lt=now - EXPORT_STALE_AFTER
    )
    claim_stamp = {"started_at": now, "heartbeat_at": now, "rows_done": 0}
    if not ExportJob.objects.filter(claimable, pk=job_id).update(status=ExportStatus.RUNNING, **claim_stamp):
        return "skipped"
    job = ExportJob.objects.select_related("user", "organisation").get(pk=job_id)
    mine = Q(started_at=now)
    tmp = export_storage_dir() / f"{job.pk}.{secrets.token_hex(4)}.part"
    try:
        with translation.override(job.language or None):
            outcome = _export_write(job, tmp, mine)
    except Exception:
        logger.exception("export job %s failed", job.pk)
        outcome = ExportError.INTERNAL
    if outcome is not None:
        tmp.unlink(missing_ok=True)
        _export_fail(job, outcome, mine)
        return ExportStatus.FAILED
    return ExportStatus.READY


def _export_write(job: ExportJob, tmp, mine: Q) -> str | None:
    """Write the file and finish the job; an error code if the job must fail instead."""
    from . import exports
    from .filtersets import TransactionFilterSet, refresh_card_ref
    from .models import Transaction as Txn

    user = job.user
    if not (user.is_active and user.has_portal_perm(Perm.TRANSACTIONS_EXPORT)):
        return ExportError.PERMISSION
    data = QueryDict(mutable=True)
    data.update(job.params)
    if data.get("card_ref"):
        data["card_ref"] = refresh_card_ref(data["card_ref"]) or ""
    filterset = TransactionFilterSet(
        data, queryset=Txn.objects.visible_to(user), request=SimpleNamespace(user=user), mode="history"
    )
    if not filterset.is_valid():
        return ExportError.INVALID_FILTER
    qs = filterset.qs
    total = qs.count()
    if total > exports.job_limit(job.file_format):
        return ExportError.TOO_MANY_ROWS
    ExportJob.objects.filter(mine, pk=job.pk).update(rows_total=total)

    def progress(done: int) -> None:
        ExportJob.objects.filter(mine, pk=job.pk, status=ExportStatus.RUNNING).update(
            rows_done=done, rows_total=Greatest(F("rows_total"), done), heartbeat_at=timezone.now()
        )

    tmp.parent.mkdir(parents=True, exist_ok=True)
    rows = exports.write_file(qs, tmp, file_format=job.file_format, sort=filterset.sort_order, progress=progress)
    digest = hashlib.sha256()
    with open(tmp, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    size = tmp.stat().st_size
    os.replace(tmp, job.path)
    finished = timezone.now()
    with transaction.atomic():
        won = _export_set_status(
            job.pk,
            old=ExportStatus.RUNNING,
            new=ExportStatus.READY,
            extra=mine,
            rows_done=rows,
            rows_total=rows,
            size=size,
            sha256=digest.hexdigest(),
            finished_at=finished,
            heartbeat_at=finished,
            expires_at=finished + EXPORT_KEEP,
        )
        if won:
            audit_record(
                action="transaction.export_ready",
                actor=None,
                actor_repr=_JOB_ACTOR,
                organisation=job.organisation,
                obj=job,
                details={"rows": rows, "format": job.file_format, "size": size, "sha256": digest.hexdigest()},
            )
    return None


def _export_fail(job: ExportJob, reason: str, mine: Q) -> None:
    finished = timezone.now()
    with transaction.atomic():
        won = _export_set_status(
            job.pk,
            old=ExportStatus.RUNNING,
            new=ExportStatus.FAILED,
            extra=mine,
            error=reason,
            finished_at=finished,
            expires_at=finished + EXPORT_KEEP,
        )
        if won:
            audit_record(
                action="transaction.export_failed",
                actor=None,
                actor_repr=_JOB_ACTOR,
                organisation=job.organisation,
                obj=job,
                outcome="failure",
                details={"reason": reason, "format": job.file_format},
            )


def export_download_record(*, actor, job: ExportJob) -> None:
    """Audit one download of a prepared file (action ``transaction.export_download``)."""
    with transaction.atomic():
        audit_record(
            action="transaction.export_download",
            actor=actor,
            obj=job,
            details={"rows": job.rows_total, "format": job.file_format, "sha256": job.sha256},
        )


def export_purge_expired(*, now: datetime | None = None) -> int:
    """Expire ready and failed jobs past ``expires_at`` and delete their files; return how many.

    Each job is expired by compare-and-set with its audit event; the file goes after commit.
    """
    now = now or timezone.now()
    purged = 0
    due = ExportJob.objects.filter(
        status__in=(ExportStatus.READY, ExportStatus.FAILED), expires_at__lte=now
    ).values_list("pk", "status", "organisation_id")
    for pk, status, organisation_id in list(due):
        with transaction.atomic():
            if not _export_set_status(pk, old=status, new=ExportStatus.EXPIRED):
                continue
            audit_record(
                action="transaction.export_expired",
                actor=None,
                actor_repr=_JOB_ACTOR,
                organisation=Organisation(pk=organisation_id),
                object_type="payments.exportjob",
                object_id=str(pk),
                details={},
            )
            path = export_storage_dir() / str(pk)
            transaction.on_commit(lambda path=path: path.unlink(missing_ok=True))
        purged += 1
    return purged


# --- merchant profiles ---------------------------------------------------------------------------


def merchant_profile_save(*, actor, profile, account_number: str = "", changed: list[str] | None = None):
    """Create or update a merchant's profile (platform administrators, through the admin); audited
    ``merchant.profile_saved``. ``account_number``, when given, is stored masked only."""
    from .cards import mask_account
    from .models import PRODUCTS

    if profile.merchant.kind != "merchant":
        raise ValueError("a profile belongs to a merchant")
    unknown = [code for code in profile.products or [] if code not in PRODUCTS]
    if unknown:
        raise ValueError(f"unknown product codes {unknown}")
    if account_number:
        profile.settlement_account_masked = mask_account(account_number)
    created = profile._state.adding
    with transaction.atomic():
        profile.save()
        audit_record(
            action="merchant.profile_saved",
            actor=actor,
            organisation=profile.merchant,
            obj=profile,
            details={
                "created": created,
                "changed": sorted(changed or []),
                "refund_window_days": profile.refund_window_days,
                "products": list(profile.products or []),
                "limits": [profile.limit_per_txn, profile.limit_daily, profile.limit_monthly],
            },
        )
    return profile


# --- Reconciliation adjustments (used by reconciliation.upstream after an approved adjustment) ----------------------


def ledger_adjust(
    *,
    actor,
    transaction_id: int,
    reason: str,
    amount: int | None = None,
    status: str | None = None,
    reference: str = "",
) -> Transaction:
    """Correct a transaction's ``amount`` and/or ``status`` to what the card network settled.

    Only for an adjustment approved through maker-checker (``reference`` names it, e.g. the approval request).
    Unlike ``ledger_record`` a status may move back (success → failed) because the network's file is the
    authority. The amount stays positive and never below what was already refunded. Audited as
    ``transaction.adjusted`` with the values before and after, in the same transaction.
    """
    if amount is not None and (isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0):
        raise ValueError("amount must be a positive integer of fen")
    if status is not None and status not in TxnStatus.values:
        raise ValueError(f"unknown status {status!r}")
    with transaction.atomic():
        txn = Transaction.objects.select_for_update().get(pk=transaction_id)
        updates: dict = {}
        if amount is not None and amount != txn.amount:
            if amount < txn.refunded_amount:
                raise LedgerConflictError(f"transaction {txn.pk}: amount below what was refunded")
            updates["amount"] = amount
        if status is not None and status != txn.status:
            updates["status"] = status
        if not updates:
            return txn
        before = {key: getattr(txn, key) for key in updates}
        Transaction.objects.filter(pk=txn.pk).update(**updates, updated_at=timezone.now())
        txn.refresh_from_db()
        audit_record(
            action="transaction.adjusted",
            actor=actor,
            actor_repr=None if actor else "ledger:reconciliation",
            organisation=txn.merchant,
            obj=txn,
            details={"before": before, "after": updates, "reason": reason[:500], "reference": reference[:100]},
        )
    return txn
