"""Shared machinery of the benchmarks: the PostgreSQL database, the data, the server, a signed-in session.

Everything runs against a dedicated database (``portal_bench`` at the issue's sizes, ``portal_bench_<rows>``
for a smaller ``--rows`` smoke run) on ``127.0.0.1:5432`` as ``postgres`` (trust authentication). The data is
loaded once with ``manage.py ledger_bulk_load`` and reused while the row count is reached. Servers are real
gunicorn processes on a free loopback port, with the same environment as the in-process Django of the driver.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VAR = ROOT / "var" / "bench"
PYTHON = sys.executable
PG_HOST, PG_PORT, PG_USER = "127.0.0.1", 5432, "postgres"
FULL_ROWS = 10_000_000
MERCHANTS = 100
DAYS = 365
SESSION_COOKIE = "sessionid"
MERCHANT_USER = "bench_operator"
ACQUIRER_USER = "bench_acquirer"


def database_name(rows: int) -> str:
    return "portal_bench" if rows == FULL_ROWS else f"portal_bench_{rows}"


def database_url(name: str) -> str:
    return f"postgres://{PG_USER}@{PG_HOST}:{PG_PORT}/{name}"


def bench_env(db_name: str, **extra: str) -> dict[str, str]:
    """The environment of every Django process of a run (driver, loader, gunicorn, workers)."""
    env = dict(os.environ)
    env.update(
        DATABASE_URL=database_url(db_name),
        DJANGO_SETTINGS_MODULE="portal.settings",
        PORTAL_ENV="development",
        DJANGO_DEBUG="0",
        DJANGO_ALLOWED_HOSTS="127.0.0.1,localhost,testserver",
        PORTAL_VAR_DIR=str(VAR / db_name),
        LOG_LEVEL="WARNING",
        PYTHONPATH=str(ROOT),
    )
    env.update(extra)
    return env


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def run(cmd: list[str], env: dict[str, str] | None = None, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=ROOT, env=env, check=True, **kwargs)


# --- database and data ------------------------------------------------------------------------------------------


def pg_connect(db_name: str):
    import psycopg

    return psycopg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, dbname=db_name, autocommit=True)


def ensure_database(db_name: str) -> None:
    """Create ``db_name`` if missing and apply the migrations (a no-op when up to date)."""
    with pg_connect("postgres") as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [db_name]).fetchone()
        if not exists:
            log(f"creating database {db_name}")
            conn.execute(f'CREATE DATABASE "{db_name}"')
    (VAR / db_name).mkdir(parents=True, exist_ok=True)
    run([PYTHON, "manage.py", "migrate", "--no-input", "-v", "0"], env=bench_env(db_name))


def ledger_rows(db_name: str) -> int:
    with pg_connect(db_name) as conn:
        return conn.execute("SELECT count(*) FROM payments_transaction").fetchone()[0]


def ensure_rows(db_name: str, rows: int, *, merchants: int = MERCHANTS, days: int = DAYS) -> int:
    """Load the ledger up to ``rows`` rows (once); return the row count."""
    have = ledger_rows(db_name)
    if have >= rows:
        log(f"{db_name}: {have:,} ledger rows already loaded, reused")
        return have
    missing = rows - have
    log(f"{db_name}: loading {missing:,} rows over {merchants} merchants and {days} days (COPY)")
    began = time.monotonic()
    run(
        ["nice", "-n", "10", PYTHON, "manage.py", "ledger_bulk_load", "--rows", str(missing), "--merchants",
         str(merchants), "--days", str(days), "--seed", str(20260101 + have)],
        env=bench_env(db_name),
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    with pg_connect(db_name) as conn:
        # Set the visibility map so that the planner may use index-only scans, as it would on a settled ledger.
        conn.execute("VACUUM (ANALYZE) payments_transaction")
    log(f"loaded in {time.monotonic() - began:.0f} s")
    return ledger_rows(db_name)


def django_setup(db_name: str, **extra: str) -> None:
    """Configure this process's Django for the bench database (call once, before importing models)."""
    os.environ.update(bench_env(db_name, **extra))
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    import django

    django.setup()


# --- users and sessions -----------------------------------------------------------------------------------------


def bench_user(username: str, *, merchant: bool):
    """A merchant operator of the first benchmark merchant, or a reviewer of the benchmark acquirer."""
    from portal.accounts.models import Organisation, RoleAssignment, SMSDevice, User

    if merchant:
        org = Organisation.objects.filter(kind="merchant").order_by("code").first()
        role = "merchant_operator"
    else:
        org = Organisation.objects.get(code="48029999")
        role = "acquirer_reviewer"
    user, created = User.objects.get_or_create(
        username=username,
        # One verified phone per active user (a database constraint): each bench user has its own.
        defaults={
            "organisation": org,
            "phone": "13900000001" if merchant else "13900000002",
            "phone_verified": True,
            "first_name": "Bench",
        },
    )
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    RoleAssignment.objects.get_or_create(user=user, role=role)
    SMSDevice.objects.get_or_create(
        user=user, purpose="login", defaults={"name": "sms", "phone": user.phone, "confirmed": True}
    )
    return user


def signed_in_session(user) -> str:
    """A session key of ``user`` signed in with both factors (as ``tests.factories.login_fully``)."""
    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore
    from django_otp import DEVICE_ID_SESSION_KEY

    from portal.accounts.middleware import SESSION_AUTH_AT, SESSION_LAST_ACTIVITY
    from portal.accounts.models import SMSDevice

    device = SMSDevice.objects.get(user=user, purpose="login")
    store = SessionStore()
    store[SESSION_KEY] = str(user.pk)
    store[BACKEND_SESSION_KEY] = "portal.accounts.backends.PortalModelBackend"
    store[HASH_SESSION_KEY] = user.get_session_auth_hash()
    store[DEVICE_ID_SESSION_KEY] = device.persistent_id
    now = time.time()
    store[SESSION_AUTH_AT] = now
    store[SESSION_LAST_ACTIVITY] = now
    store["portal_otp_verified_at"] = now
    store.set_expiry(settings.SESSION_COOKIE_AGE)
    store.create()
    return store.session_key


# --- servers ----------------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Server:
    process: subprocess.Popen
    url: str

    def worker_pids(self) -> list[int]:
        path = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        try:
            return [int(p) for p in path.read_text().split()]
        except OSError:
            return []


@contextlib.contextmanager
def gunicorn(app: str, env: dict[str, str], *, workers: int = 2, timeout: int = 900) -> Iterator[Server]:
    """A gunicorn of ``app`` on a free loopback port (sync workers), stopped on exit."""
    port = free_port()
    log_file = open(VAR / f"gunicorn-{port}.log", "wb")
    cmd = [PYTHON, "-m", "gunicorn", app, "--bind", f"127.0.0.1:{port}", "--workers", str(workers),
           "--timeout", str(timeout), "--log-level", "warning", "--chdir", str(ROOT)]  # fmt: skip
    process = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log_file, stderr=subprocess.STDOUT)
    server = Server(process, f"http://127.0.0.1:{port}")
    try:
        _wait_ready(server, workers)
        yield server
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log_file.close()


def _wait_ready(server: Server, workers: int) -> None:
    import httpx

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {server.process.returncode}; see {VAR}/gunicorn-*.log")
        try:
            httpx.get(server.url + "/", timeout=5)
            if len(server.worker_pids()) >= workers:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError("gunicorn did not start within 60 s")


# --- measures ---------------------------------------------------------------------------------------------------


def p95(samples: list[float]) -> float:
    """The 95th percentile (nearest rank) of ``samples``."""
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time consumed so far by ``pids`` (from ``/proc/<pid>/stat``)."""
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime (clock ticks)
    return total / os.sysconf("SC_CLK_TCK")


def peak_rss_mb(pid: int | str = "self") -> float:
    """Peak resident memory (VmHWM) of a running process, in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def result(name: str, **values: object) -> str:
    def fmt(value: object) -> str:
        return f"{value:.3f}".rstrip("0").rstrip(".") if isinstance(value, float) else str(value)

    line = f"RESULT {name} " + " ".join(f"{key}={fmt(value)}" for key, value in values.items())
    print(line, flush=True)
    return line
