"""Deliver a queued message through the configured backend (stub: outbox only)."""

import logging

from django.utils import timezone

from portal.accounts.models import SmsMessage, SmsStatus

log = logging.getLogger("portal.sms")


def deliver(message_id: int) -> None:
    claimed = SmsMessage.objects.filter(pk=message_id, status=SmsStatus.QUEUED).update(attempts=1)
    if not claimed:
        return
    message = SmsMessage.objects.get(pk=message_id)
    log.warning("SMS outbox → %s: %s", message.phone, message.text)
    SmsMessage.objects.filter(pk=message_id).update(status=SmsStatus.SENT, sent_at=timezone.now())
