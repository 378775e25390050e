"""Thin Celery task: deliver one queued SMS (idempotent, see ``delivery.py``)."""

from celery import shared_task


@shared_task(bind=True, name="accounts.send_sms_message", max_retries=None)
def send_sms_message(self, message_id: int, attempt: int = 0) -> str:
    """Deliver message ``message_id``; on an infrastructure fault, schedule the next attempt later.

    ``attempt`` is the number of tries made before this one: the claim in ``deliver`` only
    succeeds when the message's counter still says so, which makes a duplicated job a no-op.
    """
    from .delivery import Outcome, deliver, retry_countdown

    outcome = deliver(message_id, attempt=attempt)
    if outcome is Outcome.RETRY:
        raise self.retry(args=(message_id,), kwargs={"attempt": attempt + 1}, countdown=retry_countdown(attempt + 1))
    return outcome.value
