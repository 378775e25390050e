"""Celery tasks of the approval engine (autodiscovered); thin wrappers around services."""

from celery import shared_task

from .services import approvals_expire_due


@shared_task(name="approvals.expire_pending_approvals")
def expire_pending_approvals() -> int:
    """Expire pending requests past their deadline (every 5 minutes through Celery beat). Idempotent."""
    return approvals_expire_due()
