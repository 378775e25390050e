"""Thin Celery tasks: background detail downloads and their purge, the certificate expiry warning (the work is in
``services`` and ``gateway.certificates``)."""

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


@shared_task(name="payments.warn_expiring_certificates")
def warn_expiring_certificates() -> int:
    """Log and audit the ACP certificates expiring soon, once per certificate and day (daily, see the beat schedule)."""
    from .gateway.certificates import certificates_audit_expiring

    return certificates_audit_expiring()


# Registered with the worker through this autodiscovered module (payments.gateway is not an app).
from .gateway.tasks import confirm_transaction  # noqa: E402, F401
