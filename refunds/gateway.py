"""The refunds' conversation with the ACP gateway: send a void / refund, ask for its outcome, and
record a final outcome in the ledger (``payments.services.ledger_record``, idempotent).

Every send carries the item's stable ``order_id`` and the ``txn_time`` saved before the first
attempt, so a repeat is refused by the network as a duplicate (``12``) instead of moving money
twice, and a status query (orderId + txnTime) finds it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

from payments.choices import TxnSource, TxnStatus
from payments.gateway.acp.errors import GatewayTimeoutError
from payments.gateway.acp.respcodes import RespClass, lookup
from payments.gateway.config import gateway_client
from payments.services import LedgerConflictError, ledger_record

logger = logging.getLogger(__name__)

ACCEPTED = "accepted"  # 受理成功: the result comes later (notification or query)
FAILED = "failed"  # refused: nothing moved
RETRY = "retry"  # 02/06: nothing accepted, try again later
UNKNOWN = "unknown"  # timeout or 03/04/05: query it
DUPLICATE = "duplicate"  # 12: this order id was already received: query it

SUCCEEDED = "succeeded"
PENDING = "pending"
NOT_FOUND = "not_found"

RESULT_FIELDS = ("respCode", "respMsg", "queryId", "settleDate", "traceNo", "traceTime")


@dataclass
class Answer:
    status: str
    params: dict = field(default_factory=dict)

    def result(self) -> dict:
        """The result-file columns of the answer (respCode/respMsg of the original for a query)."""
        params = self.params
        code = params.get("origRespCode") or params.get("respCode", "")
        msg = params.get("origRespMsg") or params.get("respMsg", "") or (str(lookup(code).zh) if code else "")
        return {
            "respCode": code,
            "respMsg": msg[:255],
            "queryId": params.get("queryId", ""),
            "settleDate": params.get("settleDate", ""),
            "traceNo": params.get("traceNo", ""),
            "traceTime": params.get("traceTime", ""),
        }


def send(
    *, mer_id: str, txn_type: str, order_id: str, amount: int, orig_query_id: str, txn_time: datetime, req_reserved=""
) -> Answer:
    """Send a void (``31``) or refund (``04``). Connection and HTTP errors propagate (state unknown
    to nobody: nothing reached the network, or a query will tell); a timeout is ``UNKNOWN``."""
    with gateway_client(mer_id) as client:
        method = client.void if txn_type == "31" else client.refund
        try:
            result = method(
                order_id=order_id,
                txn_amt=amount,
                orig_qry_id=orig_query_id,
                txn_time=txn_time,
                req_reserved=req_reserved or None,
                resolve_pending=False,
            )
        except GatewayTimeoutError:
            return Answer(UNKNOWN)
    params = dict(result.response.params)
    code = result.response.resp_code
    if code == "12":
        return Answer(DUPLICATE, params)
    status = {
        RespClass.SUCCESS: ACCEPTED,
        RespClass.FAILURE: FAILED,
        RespClass.RETRY_LATER: RETRY,
        RespClass.PENDING_QUERY: UNKNOWN,
    }[result.status]
    return Answer(status, params)


def query(*, mer_id: str, order_id: str, txn_time: datetime, txn_type: str, delays=(0,)) -> Answer:
    """Ask the network for the outcome: ``SUCCEEDED``, ``FAILED``, ``NOT_FOUND`` (``34``: it never
    arrived) or ``PENDING`` (not final yet, or no answer)."""
    with gateway_client(mer_id) as client:
        outcome = client.query_until_final(order_id=order_id, txn_time=txn_time, txn_type=txn_type, delays=delays)
    params = dict(outcome.response.params) if outcome.response is not None else {}
    if outcome.status is RespClass.SUCCESS:
        return Answer(SUCCEEDED, params)
    if outcome.status is RespClass.FAILURE:
        return Answer(FAILED, params)
    if params.get("respCode") == "34":
        return Answer(NOT_FOUND, params)
    return Answer(PENDING, params)


def record_in_ledger(
    *, merchant, order_id: str, txn_time: datetime, txn_type: str, amount: int, orig_query_id: str, answer: Answer
):
    """Record a final outcome learnt by query in the ledger (the notification may be late or lost);
    idempotent, so a notification recorded first wins and nothing is counted twice. Returns the
    ledger row, or None when the ledger refuses it (logged for reconciliation)."""
    status = TxnStatus.SUCCESS if answer.status == SUCCEEDED else TxnStatus.FAILED
    result = answer.result()
    try:
        txn, _created = ledger_record(
            merchant=merchant,
            order_id=order_id,
            txn_time=txn_time,
            txn_type=txn_type,
            amount=amount,
            status=status,
            source=TxnSource.NOTIFICATION,
            query_id=result["queryId"] or None,
            resp_code=result["respCode"],
            resp_msg=result["respMsg"],
            trace_no=result["traceNo"] if result["traceNo"].isdigit() else "",
            trace_time=result["traceTime"] if len(result["traceTime"]) == 10 else "",
            orig_query_id=orig_query_id,
        )
    except (LedgerConflictError, ValueError) as exc:
        logger.warning("refunds: the ledger refused the outcome of %s: %s", order_id, exc)
        return None
    return txn
