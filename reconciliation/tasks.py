"""Thin Celery tasks of settlement and reconciliation (the work is in ``services``)."""

from __future__ import annotations

from datetime import date, timedelta

from celery import shared_task


@shared_task(name="reconciliation.close_due_settlement_days")
def close_due_settlement_days() -> list[str]:
    """The 23:00 Beijing job: close every unclosed finished day (catches up missed days; idempotent)."""
    from .services import settlement_close_due

    return [closed.day.isoformat() for closed in settlement_close_due(actor=None)]


@shared_task(name="reconciliation.produce_day_files")
def produce_day_files_task(day: str) -> int:
    """Produce the files of a closed day (enqueued on commit of the close; running twice rewrites the same bytes)."""
    from .services import produce_day_files

    return produce_day_files(date.fromisoformat(day))


@shared_task(name="reconciliation.produce_monthly_statements")
def produce_monthly_statements_task() -> int:
    """The job of the 1st: the previous month's statements (月账单) for every merchant."""
    from payments.settlement import business_today

    from .services import produce_statements_due

    first = business_today().replace(day=1)
    previous = (first - timedelta(days=1)).replace(day=1)
    return produce_statements_due(month=previous)
