"""Queue an SMS: a row now, the provider call in a background job after commit."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from portal.accounts.models import SmsMessage


class SmsDailyCapExceeded(Exception):
    """The phone has had its daily number of messages."""


def sms_send(*, phone: str, text: str, purpose: str) -> SmsMessage:
    """Store the message and send it after commit, off the request thread (a Celery job).

    Raises ``SmsDailyCapExceeded`` when ``phone`` already had ``SMS_DAILY_CAP`` messages in 24 hours.
    """
    since = timezone.now() - timedelta(hours=24)
    if SmsMessage.objects.filter(phone=phone, created_at__gte=since).count() >= settings.SMS_DAILY_CAP:
        raise SmsDailyCapExceeded(phone)
    message = SmsMessage.objects.create(phone=phone, text=text, purpose=purpose, backend=settings.SMS_BACKEND)
    from .tasks import send_sms_message

    # robust: a broker hiccup is logged, never turned into an error page after the commit.
    transaction.on_commit(lambda: send_sms_message.delay(message.pk), robust=True)
    return message
