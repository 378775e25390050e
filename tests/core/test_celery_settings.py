"""Background jobs survive a worker crash (security.md H5).

Celery acknowledges a message when the task *starts* unless told otherwise, and still acknowledges it when
the worker child is killed; a Redis broker hands an unacknowledged message to another worker after its
visibility timeout (kombu's default: one hour). The portal's settings ask for: late acknowledgement,
rejection (so redelivery) when the worker is lost, one message prefetched at a time, and a visibility
timeout longer than the longest task. These tests read what the Celery app and every registered task of
the project really use (a misspelt ``CELERY_*`` setting is silently ignored), and the Redis branch of
the settings. The crash itself (SIGKILL, restart, one side effect) is the integration lane's
``test_celery_worker.py``.
"""

from __future__ import annotations

import importlib
import importlib.util
import runpy
from pathlib import Path

import pytest
from django.apps import apps
from django.conf import settings

from portal.celery import app

SETTINGS_FILE = Path(settings.BASE_DIR) / "portal" / "settings.py"
KOMBU_REDIS_DEFAULT_VISIBILITY = 3600
PROJECT_PACKAGES = ("portal.", "payments.", "refunds.", "reconciliation.")


def project_tasks() -> list:
    """Every task the worker registers for the project: the ``tasks`` module of each installed app is
    imported, as ``app.autodiscover_tasks()`` does when the worker starts."""
    for config in apps.get_app_configs():
        if importlib.util.find_spec(f"{config.name}.tasks") is not None:
            importlib.import_module(f"{config.name}.tasks")
    return [t for _, t in sorted(app.tasks.items()) if t.__module__.startswith(PROJECT_PACKAGES)]


def test_the_settings_ask_for_crash_safe_delivery():
    assert settings.CELERY_TASK_ACKS_LATE is True
    assert settings.CELERY_TASK_REJECT_ON_WORKER_LOST is True
    assert settings.CELERY_WORKER_PREFETCH_MULTIPLIER == 1


def test_the_celery_app_uses_them():
    # read through the app, as the worker does (namespace "CELERY", lower-case names)
    conf = app.conf
    assert (conf.task_acks_late, conf.task_reject_on_worker_lost, conf.worker_prefetch_multiplier) == (True, True, 1)


def test_every_project_task_acks_late_and_is_rejected_when_its_worker_is_lost():
    tasks = project_tasks()
    names = {t.name for t in tasks}
    assert {"batches.process_batch", "refunds.send_refund", "accounts.send_sms_message"} <= names
    early = sorted(t.name for t in tasks if t.acks_late is not True)
    kept = sorted(t.name for t in tasks if t.reject_on_worker_lost is not True)
    assert (early, kept) == ([], [])


@pytest.fixture
def redis_settings(monkeypatch) -> dict:
    """The settings module evaluated afresh as with a Redis broker (the production shape)."""
    monkeypatch.setenv("CELERY_BROKER_URL", "redis://127.0.0.1:6379/0")
    monkeypatch.delenv("CELERY_VISIBILITY_TIMEOUT", raising=False)
    return runpy.run_path(str(SETTINGS_FILE), run_name="portal_settings_with_redis")


def test_the_redis_visibility_timeout_outlasts_kombus_default_and_every_task_time_limit(redis_settings):
    visibility = redis_settings["CELERY_BROKER_TRANSPORT_OPTIONS"]["visibility_timeout"]
    assert visibility == 4 * 3600
    assert visibility > KOMBU_REDIS_DEFAULT_VISIBILITY
    # a task allowed to run longer than the visibility timeout would be handed to a second worker meanwhile
    limits = {t.name: t.time_limit for t in project_tasks() if t.time_limit is not None}
    global_limit = redis_settings.get("CELERY_TASK_TIME_LIMIT")
    if global_limit is not None:
        limits["(CELERY_TASK_TIME_LIMIT)"] = global_limit
    assert {name: limit for name, limit in limits.items() if limit >= visibility} == {}
    # the crash-safety settings do not depend on the broker
    assert redis_settings["CELERY_TASK_ACKS_LATE"] is True
    assert redis_settings["CELERY_TASK_REJECT_ON_WORKER_LOST"] is True
    assert redis_settings["CELERY_WORKER_PREFETCH_MULTIPLIER"] == 1


def test_every_project_task_has_a_hard_time_limit_below_the_visibility_timeout(redis_settings):
    visibility = redis_settings["CELERY_BROKER_TRANSPORT_OPTIONS"]["visibility_timeout"]
    global_limit = redis_settings.get("CELERY_TASK_TIME_LIMIT")
    unbounded = sorted(t.name for t in project_tasks() if (t.time_limit or global_limit) is None)
    too_long = sorted(t.name for t in project_tasks() if (t.time_limit or global_limit or 0) >= visibility)
    assert (unbounded, too_long) == ([], [])


def test_a_time_limit_not_below_the_visibility_timeout_is_refused_at_startup(monkeypatch):
    from django.core.exceptions import ImproperlyConfigured

    monkeypatch.setenv("CELERY_BROKER_URL", "redis://127.0.0.1:6379/0")
    monkeypatch.setenv("CELERY_VISIBILITY_TIMEOUT", "3600")
    monkeypatch.setenv("CELERY_TASK_TIME_LIMIT", "3600")
    with pytest.raises(ImproperlyConfigured, match="CELERY_TASK_TIME_LIMIT"):
        runpy.run_path(str(SETTINGS_FILE), run_name="portal_settings_bad_limit")
    monkeypatch.setenv("CELERY_TASK_TIME_LIMIT", "3599")
    accepted = runpy.run_path(str(SETTINGS_FILE), run_name="portal_settings_ok_limit")
    assert accepted["CELERY_TASK_SOFT_TIME_LIMIT"] == 3299
