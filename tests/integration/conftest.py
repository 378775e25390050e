"""The integration lane: PostgreSQL, Redis and a real Celery worker process.

``.ci/lanes.py`` runs this directory with ``-m integration``, ``DATABASE_URL`` pointing at a fresh
PostgreSQL database (pytest-django creates and drops ``test_<name>``), ``CELERY_BROKER_URL`` and
``REDIS_URL`` on local Redis, and ``CELERY_TASK_ALWAYS_EAGER=0``.

Every test here is marked ``integration`` automatically. A test that needs the worker asks for
``celery_worker_process`` and runs with ``@pytest.mark.django_db(transaction=True)``, so that its
writes are committed and visible to the worker, which uses the same test database.

The audit table is append-only on PostgreSQL: its triggers refuse the TRUNCATE with which a
transactional test is cleaned up. Ask for ``pg_transactional_db`` (instead of
``django_db(transaction=True)``): real transactions, with the triggers off only for that flush.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
LOG_DIR = ROOT / "var" / "ci"
READY_TIMEOUT = 60


def _services_configured() -> bool:
    return (
        settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"
        and settings.CELERY_BROKER_URL.startswith("redis")
        and not settings.CELERY_TASK_ALWAYS_EAGER
    )


def pytest_collection_modifyitems(config, items):
    mine = [item for item in items if HERE in Path(str(item.path)).parents]
    for item in mine:
        item.add_marker(pytest.mark.integration)
    if not _services_configured():
        skip = pytest.mark.skip(
            reason="integration lane only: needs PostgreSQL (DATABASE_URL), Redis (CELERY_BROKER_URL) and "
            "CELERY_TASK_ALWAYS_EAGER=0; run `python3 dev.py test integration`"
        )
        for item in mine:
            item.add_marker(skip)


def _database_url(db: dict) -> str:
    user = quote(db.get("USER") or "", safe="")
    password = f":{quote(db['PASSWORD'], safe='')}" if db.get("PASSWORD") else ""
    credentials = f"{user}{password}@" if user else ""
    host = db.get("HOST") or "127.0.0.1"
    port = f":{db['PORT']}" if db.get("PORT") else ""
    return f"postgres://{credentials}{host}{port}/{db['NAME']}"


class WorkerProcess:
    """A real ``celery worker`` (prefork, 2 processes) on the test database and the test broker."""

    def __init__(self, database_url: str):
        self.name = f"itest-{os.getpid()}@localhost"
        self.env = dict(os.environ, DATABASE_URL=database_url, CELERY_TASK_ALWAYS_EAGER="0", PYTHONUNBUFFERED="1")
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        self.log_path = LOG_DIR / "celery-worker.log"
        self.process: subprocess.Popen | None = None
        self.starts = 0

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def start(self) -> None:
        self.starts += 1
        log = self.log_path.open("ab")
        log.write(f"\n===== worker start #{self.starts} {time.strftime('%H:%M:%S')} =====\n".encode())
        log.flush()
        cmd = [
            sys.executable, "-m", "celery", "-A", "portal", "worker",
            "--pool=prefork", "-c", "2", "-l", "INFO", "-n", self.name,
            "--without-gossip", "--without-mingle",
        ]  # fmt: skip
        # its own process group, so that kill() reaches the pool's children too
        self.process = subprocess.Popen(cmd, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                        start_new_session=True)  # fmt: skip
        log.close()
        self.wait_ready()

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> None:
        """Until the worker answers ``celery inspect ping`` (through the broker, like the CLI)."""
        from portal.celery import app

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the Celery worker exited with {self.process.returncode}; see {self.log_path}")
            if app.control.inspect(destination=[self.name], timeout=1.0).ping():
                return
        raise RuntimeError(f"the Celery worker did not answer a ping in {timeout} s; see {self.log_path}")

    def kill(self) -> None:
        """``kill -9`` the worker and its pool children at once, as a crash or an OOM kill would."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def restart(self) -> None:
        """Kill (if alive) and start a fresh worker; returns once it answers pings."""
        self.kill()
        self.start()

    def stop(self) -> None:
        if not self.process or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.kill()


@pytest.fixture(scope="session")
def celery_worker_process(django_db_setup, django_db_blocker):
    """A real Celery worker process on the test database, for the whole session.

    Started after pytest-django created the test database, with ``DATABASE_URL`` naming it.
    Use ``celery_worker_process.kill()`` / ``.restart()`` to simulate a crashed worker.
    """
    if not _services_configured():
        pytest.skip("needs the integration lane's PostgreSQL, Redis and CELERY_TASK_ALWAYS_EAGER=0")
    import redis

    # Nothing left over from an earlier run may reach this run's worker.
    redis.Redis.from_url(settings.CELERY_BROKER_URL).flushdb()
    worker = WorkerProcess(_database_url(settings.DATABASES["default"]))
    worker.start()
    try:
        yield worker
    finally:
        worker.stop()


@pytest.fixture
def _audit_triggers_back_on(django_db_setup, django_db_blocker):
    yield
    if settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
        from django.db import connection

        with django_db_blocker.unblock(), connection.cursor() as cursor:
            cursor.execute("ALTER TABLE audit_auditevent ENABLE TRIGGER USER")


@pytest.fixture
def pg_transactional_db(_audit_triggers_back_on, transactional_db):
    """``transactional_db`` whose closing flush may empty the append-only audit table.

    Teardown order: triggers off → pytest-django's flush → triggers back on.
    """
    yield
    if settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("ALTER TABLE audit_auditevent DISABLE TRIGGER USER")


@pytest.fixture
def wait_until():
    """``wait_until(predicate, timeout=20)``: poll until ``predicate()`` is truthy; returns its value."""

    def wait(predicate, timeout: float = 20.0, interval: float = 0.2):
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value or time.monotonic() > deadline:
                return value
            time.sleep(interval)

    return wait
