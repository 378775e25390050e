"""Sandbox jobs: notification attempts on the network's schedule, and a sweep for due ones."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings

from . import services


@shared_task(name="sandbox.notify", ignore_result=True)
def sandbox_notify(txn_id: int) -> None:
    """One notification attempt; enqueue the next one on the schedule while the receiver has not answered 200."""
    delay = services.sandbox_notify_attempt(txn_id)
    if delay is not None and not settings.CELERY_TASK_ALWAYS_EAGER:
        sandbox_notify.apply_async(args=(txn_id,), countdown=delay)


@shared_task(name="sandbox.notify_due", ignore_result=True)
def sandbox_notify_due() -> None:
    """Attempt every notification that is due (picks up attempts lost with a restarted worker)."""
    for txn_id in services.due_notifications():
        services.sandbox_notify_attempt(txn_id)
