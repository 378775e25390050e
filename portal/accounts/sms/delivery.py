"""Deliver one queued message through its backend: claim, send, record.

The claim is a compare-and-set on ``attempts``: the job that expects ``attempts == n`` moves it
to ``n + 1`` and only that job sends. A duplicated job (broker redelivery, a second worker)
finds the counter moved and does nothing, so a message is never sent twice; a retry carries
the next expected value. The provider call happens outside any database transaction.
"""

from __future__ import annotations

import enum
import logging
import re

from django.db.models import F
from django.utils import timezone

from portal.accounts.models import SmsMessage, SmsStatus

from .backends import OutboxBackend, SmsRetryableError, SmsTerminalError, get_backend

log = logging.getLogger("portal.sms")

# Five tries in all, the job waiting 10, 20, 40, 80 s between them: inside a code's lifetime.
MAX_ATTEMPTS = 5
RETRY_BASE_SECONDS = 10

# Any ASCII word holding a digit: a code, and also a generated password (letters and digits).
_SECRET_WORD = re.compile(r"[0-9A-Za-z]*[0-9][0-9A-Za-z]*")


class Outcome(enum.StrEnum):
    SKIPPED = "skipped"  # claimed by another job, or no longer queued
    SENT = "sent"
    FAILED = "failed"
    RETRY = "retry"


def redact_text(text: str) -> str:
    """``"Your code is 123456"`` → ``"Your code is ******"``: codes and passwords are secrets, so
    every ASCII word holding a digit is starred out, letter for letter."""
    return _SECRET_WORD.sub(lambda m: "*" * len(m.group(0)), text)


def retry_countdown(attempts_done: int) -> int:
    """Seconds the job waits before the next try, doubling: 10, 20, 40, 80."""
    return RETRY_BASE_SECONDS * 2 ** max(attempts_done - 1, 0)


def deliver(message_id: int, *, attempt: int = 0) -> Outcome:
    """Send message ``message_id`` if it is queued and ``attempt`` tries were made before.

    A terminal error (bad configuration, refused message) or the last allowed try failing marks
    the message ``failed`` with the error. An infrastructure fault before that answers
    ``Outcome.RETRY``: the message stays queued and the caller schedules ``attempt + 1``.
    With a real provider the stored text loses its secrets (``redact_text``) once sent or failed.
    """
    claimed = SmsMessage.objects.filter(pk=message_id, status=SmsStatus.QUEUED, attempts=attempt).update(
        attempts=F("attempts") + 1
    )
    if not claimed:
        return Outcome.SKIPPED
    message = SmsMessage.objects.get(pk=message_id)
    mine = SmsMessage.objects.filter(pk=message_id, status=SmsStatus.QUEUED, attempts=attempt + 1)
    try:
        backend = get_backend(message.backend)
        result = backend.send(message_id=message.pk, phone=message.phone, text=message.text, purpose=message.purpose)
    except SmsTerminalError as exc:
        return _fail(mine, message, str(exc))
    except SmsRetryableError as exc:
        error = str(exc) or type(exc).__name__
    except Exception as exc:  # a defect in a backend or the SDK: retried like a fault, then given up
        log.exception("SMS %s: unexpected error from backend %s", message_id, message.backend)
        error = f"Unexpected error: {type(exc).__name__}."
    else:
        text = message.text if backend.keeps_text else redact_text(message.text)
        mine.update(
            status=SmsStatus.SENT,
            sent_at=timezone.now(),
            provider_reference=result.provider_reference,
            text=text,
            error="",
        )
        log.info("SMS %s sent by %s (attempt %s)", message_id, message.backend, attempt + 1)
        return Outcome.SENT
    if attempt + 1 >= MAX_ATTEMPTS:
        return _fail(mine, message, f"{error} (gave up after {attempt + 1} attempts)")
    mine.update(error=error[:255])
    log.warning("SMS %s: attempt %s failed, will retry: %s", message_id, attempt + 1, error)
    return Outcome.RETRY


def _fail(mine, message: SmsMessage, error: str) -> Outcome:
    keeps_text = message.backend == OutboxBackend.name
    mine.update(
        status=SmsStatus.FAILED, error=error[:255], text=message.text if keeps_text else redact_text(message.text)
    )
    log.error("SMS %s failed: %s", message.pk, error)
    return Outcome.FAILED
