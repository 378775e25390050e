"""Gateway jobs (thin wrappers around :mod:`payments.gateway.services`)."""

from __future__ import annotations

from celery import shared_task

from .acp.errors import GatewayConnectionError, GatewayHTTPError, GatewayTimeoutError
from .services import transaction_confirm


@shared_task(
    name="gateway.confirm_transaction",
    ignore_result=True,
    autoretry_for=(GatewayConnectionError, GatewayHTTPError, GatewayTimeoutError),
    retry_backoff=30,
    max_retries=5,
)
def confirm_transaction(txn_id: int) -> None:
    """Confirm ledger row ``txn_id`` by a status query (idempotent: a second run changes nothing)."""
    transaction_confirm(txn_id=txn_id)
