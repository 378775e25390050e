"""Gateway-side writes: confirming a notified money-moving transaction by a status query (formats.md §4)."""

from __future__ import annotations

import logging

from payments.choices import TxnStatus
from payments.models import Transaction
from payments.services import LedgerConflictError, ledger_record

from .acp.client import BACK_QUERY_DELAYS
from .acp.respcodes import RespClass, lookup
from .config import gateway_client

logger = logging.getLogger(__name__)

#: Query at once (the notification already said the result), then on the protocol's back-office schedule.
CONFIRM_DELAYS: tuple[float, ...] = (0, *BACK_QUERY_DELAYS)

_FINAL = {RespClass.SUCCESS: TxnStatus.SUCCESS, RespClass.FAILURE: TxnStatus.FAILED}


def transaction_confirm(*, txn_id: int, delays: tuple[float, ...] = CONFIRM_DELAYS) -> str | None:
    """Query the network about ledger row ``txn_id`` and record the final result through ``ledger_record``.

    Returns the confirmed status, or None when the network has no final answer yet. Idempotent: the ledger ignores a
    result it already holds and never moves a final status back; a disagreement is logged for reconciliation.
    Gateway connection problems propagate (the job retries them).
    """
    txn = Transaction.objects.select_related("merchant").filter(pk=txn_id).first()
    if txn is None:
        return None
    with gateway_client(txn.merchant.code) as client:
        outcome = client.query_until_final(
            order_id=txn.order_id, txn_time=txn.txn_time, txn_type=txn.txn_type, delays=delays
        )
    status = _FINAL.get(outcome.status)
    if status is None or outcome.response is None:
        logger.info("confirm: transaction %s still not final after %s queries", txn.pk, outcome.attempts)
        return None
    answer = outcome.response.params
    orig_code = answer.get("origRespCode", "")
    try:
        recorded, _created = ledger_record(
            merchant=txn.merchant,
            order_id=txn.order_id,
            txn_time=txn.txn_time,
            txn_type=txn.txn_type,
            amount=txn.amount,
            status=status,
            source=txn.source,
            query_id=answer.get("queryId") or txn.query_id,
            resp_code=orig_code,
            resp_msg=(answer.get("origRespMsg") or str(lookup(orig_code).zh))[:255],
        )
    except LedgerConflictError:
        logger.warning("confirm: the query answer for transaction %s contradicts the ledger", txn.pk)
        return None
    if recorded.status != status:
        logger.warning("confirm: transaction %s is %s in the ledger but %s by query", txn.pk, recorded.status, status)
    return status
