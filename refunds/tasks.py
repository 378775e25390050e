"""Celery tasks of the refunds app: thin, idempotent wrappers taking ids (see services)."""

from celery import shared_task
from django.db import DatabaseError

from payments.gateway.acp.errors import GatewayConnectionError, GatewayHTTPError, GatewayTimeoutError

from . import services

# Infrastructure faults retry; a refused refund is a recorded, final status.
_RETRY = {
    "autoretry_for": (DatabaseError, GatewayConnectionError, GatewayHTTPError, GatewayTimeoutError, OSError),
    "retry_backoff": True,
    "max_retries": 8,
}


@shared_task(name="refunds.send_refund", acks_late=True, **_RETRY)
def send_refund(refund_id: int) -> None:
    """Send an approved refund (claims it; a second run changes nothing)."""
    services.refund_send(refund_id=refund_id)


@shared_task(name="refunds.confirm_refund", acks_late=True, **_RETRY)
def confirm_refund(refund_id: int) -> None:
    """Learn the outcome of a sent refund from the ledger or by query."""
    services.refund_confirm(refund_id=refund_id)


@shared_task(name="refunds.confirm_batch_line", acks_late=True, **_RETRY)
def confirm_batch_line(line_id: int) -> None:
    """Learn the outcome of a sent batch refund line from the ledger or by query."""
    from .batch import batch_line_confirm

    batch_line_confirm(line_id=line_id)


@shared_task(name="refunds.reconcile")
def reconcile() -> int:
    """Periodic: confirm what is still sent, resume what is stuck (every minute through Celery beat)."""
    return services.refunds_reconcile()


@shared_task(name="refunds.sweep_staging")
def sweep_staging() -> int:
    """Periodic (hourly): drop the batch validation staging left behind by a killed worker."""
    from .bulk import sweep_staging as sweep

    return sweep()
