"""Celery tasks of the accounts app (autodiscovered); thin wrappers around services."""

from celery import shared_task

from .services import users_disable_inactive
from .sms.tasks import send_sms_message

__all__ = ["disable_inactive_users", "send_sms_message"]


@shared_task(name="accounts.disable_inactive_users")
def disable_inactive_users() -> int:
    """Disable accounts inactive for more than ``ACCOUNT_INACTIVE_DAYS`` days (daily through Celery beat,
    PCI DSS 8.2.6); return how many. Idempotent: a second run finds nothing to disable."""
    return users_disable_inactive()
