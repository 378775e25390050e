"""Thin Celery tasks: background detail downloads and their purge (the work is in ``services``)."""

from celery import shared_task


@shared_task(name="payments.run_export")
def run_export(job_id: str) -> str:
    """Prepare download job ``job_id``; a duplicate delivery finds the job claimed and does nothing."""
    from .services import export_run

    return export_run(job_id=job_id)


@shared_task(name="payments.purge_expired_exports")
def purge_expired_exports() -> int:
    """Delete downloads kept past their 7 days (periodic, see ``CELERY_BEAT_SCHEDULE``)."""
    from .services import export_purge_expired

    return export_purge_expired()


# Registered with the worker through this autodiscovered module (payments.gateway is not an app).
from .gateway.tasks import confirm_transaction  # noqa: E402, F401
