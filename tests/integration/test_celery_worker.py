"""The real Celery worker runs what the portal enqueues on commit, on the same PostgreSQL database."""

import pytest
from django.conf import settings
from django.db import transaction

from portal.accounts.models import SmsMessage, SmsStatus
from portal.accounts.sms import sms_send

# Real transactions (the worker sees only committed rows); see pg_transactional_db in conftest.py.
pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("pg_transactional_db")]


def _status(pk: int) -> str:
    return SmsMessage.objects.values_list("status", flat=True).get(pk=pk)


def test_the_lane_runs_on_postgresql_and_redis_without_eager_tasks():
    assert settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"
    assert settings.DATABASES["default"]["NAME"].startswith("test_")
    assert settings.CELERY_BROKER_URL.startswith("redis://")
    assert settings.CELERY_TASK_ALWAYS_EAGER is False


def test_a_task_enqueued_on_commit_is_run_by_the_worker(celery_worker_process, wait_until):
    # given an SMS queued inside a transaction
    with transaction.atomic():
        message = sms_send(phone="13800000099", text="integration check 123456", purpose="login")
        # then nothing is sent before the commit
        assert _status(message.pk) == SmsStatus.QUEUED
    # when the transaction commits, the worker picks the job up
    sent = wait_until(lambda: _status(message.pk) == SmsStatus.SENT, timeout=20)
    # then the row is sent, by the worker process (not this one)
    assert sent, f"still {_status(message.pk)!r} after 20 s; see {celery_worker_process.log_path}"
    message.refresh_from_db()
    assert message.sent_at is not None
    assert message.attempts == 1


def test_a_rolled_back_transaction_enqueues_nothing(celery_worker_process, wait_until):
    # given an SMS queued in a transaction that rolls back
    with pytest.raises(RuntimeError), transaction.atomic():
        sms_send(phone="13800000098", text="never sent", purpose="login")
        raise RuntimeError("rollback")
    # then no row exists and the worker receives nothing
    assert SmsMessage.objects.filter(phone="13800000098").count() == 0


def test_the_worker_comes_back_after_kill_9(celery_worker_process, wait_until):
    # given the worker is killed hard
    first_pid = celery_worker_process.pid
    celery_worker_process.kill()
    with transaction.atomic():
        message = sms_send(phone="13800000097", text="after restart 654321", purpose="login")
    # when a new worker starts
    celery_worker_process.restart()
    # then the job queued while no worker ran is delivered
    assert celery_worker_process.pid != first_pid
    assert wait_until(lambda: _status(message.pk) == SmsStatus.SENT, timeout=20)
