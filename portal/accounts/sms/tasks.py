"""Thin Celery task: deliver one queued SMS (idempotent)."""

from celery import shared_task


@shared_task(name="accounts.send_sms_message")
def send_sms_message(message_id: int) -> None:
    from .delivery import deliver

    deliver(message_id)
