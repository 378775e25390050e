"""Ledger writes. The notification receiver, the reconciliation import and the sandbox all call
``ledger_record``; nothing else creates or changes a transaction (the benchmark bulk loader aside)."""

from __future__ import annotations

import logging
from datetime import date, datetime

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from portal.accounts.models import Organisation
from portal.audit.services import audit_record

from .cards import card_hash, mask_pan, normalise_pan
from .choices import REVERSAL_TYPES, TRANSITIONS, TxnSource, TxnStatus
from .models import Transaction
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
