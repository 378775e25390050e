"""From a verified ACP notification to the ledger (``payments.services.ledger_record``).

Pure mapping plus one write path: :func:`notification_record` parses the message (raising
:class:`NotificationRejected` with a reason for anything unusable), records it idempotently and, for money-moving
transactions that are new to the ledger, enqueues the confirm-by-query job after commit.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from datetime import date

from django.db import transaction

from payments.cards import luhn_valid
from payments.choices import TxnSource, TxnStatus, TxnType
from payments.services import LedgerConflictError, ledger_record
from payments.settlement import settlement_date_for
from portal.accounts.models import Organisation, OrganisationKind
from portal.audit.services import audit_record

from .acp.errors import ACPFormatError
from .acp.messages import parse_txn_time
from .acp.respcodes import RespClass, classify

logger = logging.getLogger(__name__)

#: Transactions whose notification is confirmed by a query (formats.md §4: 涉及资金类的交易).
MONEY_MOVING = frozenset({TxnType.CONSUME, TxnType.REFUND, TxnType.VOID, TxnType.COLLECTION, TxnType.PAYOUT})

_STATUS = {
    RespClass.SUCCESS: TxnStatus.SUCCESS,
    RespClass.FAILURE: TxnStatus.FAILED,
    RespClass.PENDING_QUERY: TxnStatus.PENDING,
    RespClass.RETRY_LATER: TxnStatus.PENDING,
}
_PATTERNS = {
    "orderId": re.compile(r"[0-9A-Za-z]{1,40}"),
    "txnAmt": re.compile(r"[1-9]\d{0,17}"),
    "queryId": re.compile(r"[0-9A-Za-z]{1,21}"),
    "origQryId": re.compile(r"[0-9A-Za-z]{1,21}"),
    "txnSubType": re.compile(r"\d{2}"),
    "bizType": re.compile(r"\d{6}"),
    "channelType": re.compile(r"\d{2}"),
    "accessType": re.compile(r"\d"),
    "currencyCode": re.compile(r"\d{3}"),
    "traceNo": re.compile(r"\d{1,6}"),
    "traceTime": re.compile(r"\d{10}"),
    "settleDate": re.compile(r"(0[1-9]|1[0-2])(0[1-9]|[12]\d|3[01])"),
    "payCardType": re.compile(r"\d{2}"),
    "respCode": re.compile(r"[0-9A-Z]{2}"),
}
_REQUIRED = ("merId", "orderId", "txnTime", "txnType", "txnAmt", "respCode")


class NotificationRejected(Exception):
    """The notification is refused (HTTP 400); ``reason`` is a short machine word for the audit event."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def notification_reject_audit(*, reason: str, params: Mapping[str, str] | None) -> None:
    """Record one security audit event for a refused notification (no card data: merId and orderId only)."""
    params = params or {}
    merchant = (
        Organisation.objects.filter(kind=OrganisationKind.MERCHANT, code=params.get("merId", "")[:15]).first()
        if params.get("merId")
        else None
    )
    with transaction.atomic():
        audit_record(
            action="gateway.notify_rejected",
            actor_repr="gateway:notify",
            organisation=merchant,
            outcome="failure",
            object_type="payments.transaction",
            details={
                "reason": reason,
                "merId": _printable(params.get("merId", ""), 15),
                "orderId": _printable(params.get("orderId", ""), 40),
            },
        )


def _printable(value: str, limit: int) -> str:
    return "".join(ch for ch in value[:limit] if ch.isprintable())


def _settle_date(value: str, txn_time) -> date | None:
    """``settleDate`` (MMDD) as the date nearest to the settlement day of ``txn_time`` (no year in the message)."""
    if not value:
        return None
    expected = settlement_date_for(txn_time)
    candidates = []
    for year in (expected.year - 1, expected.year, expected.year + 1):
        try:
            candidates.append(date(year, int(value[:2]), int(value[2:])))
        except ValueError:
            continue
    return min(candidates, key=lambda day: abs(day - expected)) if candidates else None


def parse_notification(params: Mapping[str, str]) -> tuple[Organisation, dict]:
    """Check a verified notification and return its merchant and the ``ledger_record`` arguments."""
    if any(not params.get(name) for name in _REQUIRED):
        raise NotificationRejected("malformed")
    for name, pattern in _PATTERNS.items():
        value = params.get(name)
        if value and not pattern.fullmatch(value):
            raise NotificationRejected("malformed")
    txn_type = params["txnType"]
    if txn_type not in TxnType.values:
        raise NotificationRejected("unsupported_txn_type")
    try:
        txn_time = parse_txn_time(params["txnTime"])
    except ACPFormatError as exc:
        raise NotificationRejected("malformed") from exc
    merchant = Organisation.objects.filter(kind=OrganisationKind.MERCHANT, code=params["merId"]).first()
    if merchant is None:
        raise NotificationRejected("unknown_merchant")
    acc_no = (params.get("accNo") or "").strip()
    card_number = acc_no if acc_no.isdigit() and 13 <= len(acc_no) <= 19 and luhn_valid(acc_no) else ""
    status = _STATUS[classify(params["respCode"], txn_type=txn_type)]
    fields = {
        "order_id": params["orderId"],
        "txn_time": txn_time,
        "txn_type": txn_type,
        "amount": int(params["txnAmt"]),
        "status": status,
        "source": TxnSource.NOTIFICATION,
        "query_id": params.get("queryId") or None,
        "txn_sub_type": params.get("txnSubType") or "01",
        "biz_type": params.get("bizType") or "000201",
        "channel_type": params.get("channelType") or "07",
        "access_type": params.get("accessType") or "0",
        "currency": params.get("currencyCode") or "156",
        "resp_code": params["respCode"],
        "resp_msg": params.get("respMsg", "")[:255],
        "trace_no": params.get("traceNo", ""),
        "trace_time": params.get("traceTime", ""),
        "settle_date": _settle_date(params.get("settleDate", ""), txn_time),
        "orig_query_id": params.get("origQryId", ""),
        "card_number": card_number,
        "card_type": params.get("payCardType", ""),
        "req_reserved": params.get("reqReserved", "")[:1024],
    }
    return merchant, fields


def notification_record(*, params: Mapping[str, str]):
    """Record a verified notification; return ``(transaction, created)``.

    Raises NotificationRejected (nothing written) for a malformed message, an unknown merchant or a message that
    contradicts the ledger. A new money-moving transaction gets a confirm-by-query job after commit.
    """
    from .tasks import confirm_transaction

    merchant, fields = parse_notification(params)
    try:
        with transaction.atomic():
            txn, created = ledger_record(merchant=merchant, **fields)
            if created and txn.txn_type in MONEY_MOVING:
                txn_id = txn.pk
                transaction.on_commit(lambda: confirm_transaction.delay(txn_id), robust=True)
    except LedgerConflictError as exc:
        logger.warning("notify: conflict for orderId %s: %s", fields["order_id"], exc)
        raise NotificationRejected("conflict") from exc
    except ValueError as exc:
        raise NotificationRejected("malformed") from exc
    return txn, created
