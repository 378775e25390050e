"""Celery tasks of the accounts app (autodiscovered)."""

from .sms.tasks import send_sms_message

__all__ = ["send_sms_message"]
