"""Thin Celery tasks of upstream reconciliation (the work is in ``fetch``)."""

from celery import shared_task


@shared_task(name="recon_upstream.fetch_due_files")
def fetch_due_files() -> int:
    """Hourly: fetch and import the upstream files due (T+1 after 09:00 Beijing); idempotent."""
    from .fetch import upstream_fetch_due

    return len(upstream_fetch_due())
