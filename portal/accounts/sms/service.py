"""Queue an SMS: a row now, the provider call in a background job after commit."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from portal.accounts.models import SmsMessage
from portal.core.context import current_origin

# One counter per client IP and Beijing day (UTC+8), kept in the shared cache (Redis in production).
_IP_COUNTER = "sms-ip:{ip}:{day}"
_DAY_SECONDS = 24 * 3600


class SmsDailyCapExceeded(Exception):
    """The phone has had its daily number of messages."""


class SmsIpCapExceeded(SmsDailyCapExceeded):
    """The client's IP address has asked for its daily number of messages (SMS bombing, cost abuse)."""


def _count_ip() -> None:
    """Count one message for the requesting IP (none outside a request); refuse past ``SMS_DAILY_CAP_PER_IP``."""
    ip = current_origin().ip
    if not ip:
        return
    day = (timezone.now() + timedelta(hours=8)).date().isoformat()
    key = _IP_COUNTER.format(ip=ip, day=day)
    cache.add(key, 0, timeout=_DAY_SECONDS)
    try:
        count = cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.set(key, 1, timeout=_DAY_SECONDS)
        count = 1
    if count > settings.SMS_DAILY_CAP_PER_IP:
        raise SmsIpCapExceeded(ip)


def sms_send(*, phone: str, text: str, purpose: str) -> SmsMessage:
    """Store the message and send it after commit, off the request thread (a Celery job).

    Raises ``SmsDailyCapExceeded`` when ``phone`` already had ``SMS_DAILY_CAP`` messages in 24 hours, and
    ``SmsIpCapExceeded`` when the requesting IP asked for ``SMS_DAILY_CAP_PER_IP`` today (Beijing day).
    """
    since = timezone.now() - timedelta(hours=24)
    if SmsMessage.objects.filter(phone=phone, created_at__gte=since).count() >= settings.SMS_DAILY_CAP:
        raise SmsDailyCapExceeded(phone)
    _count_ip()
    message = SmsMessage.objects.create(phone=phone, text=text, purpose=purpose, backend=settings.SMS_BACKEND)
    from .tasks import send_sms_message

    # robust: a broker hiccup is logged, never turned into an error page after the commit.
    transaction.on_commit(lambda: send_sms_message.delay(message.pk), robust=True)
    return message
