#!/usr/bin/env python3
"""Every test lane of the portal, in order, with a summary. Run by ``python3 dev.py test``.

    python3 dev.py test                       # every lane
    python3 dev.py test sqlite browser        # only these lanes
    python3 dev.py test sqlite -- -k login    # extra pytest arguments after --

Lanes: ruff, check, migrations, imports, sqlite, postgres, integration, browser.

With ``CI=true`` nothing may be skipped: PostgreSQL and Redis are started when they are not
running, Debian's chromium is installed when missing, a lane whose service stays unreachable
fails, and a pytest lane that skips a test fails. Without CI, the postgres, integration and browser
lanes are skipped (with a message) when their services are missing.

The last line is ``N passed, N failed`` (the sums of the pytest lanes); the exit status is
non-zero when any lane failed.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
BIN = Path(PY).parent
REPORTS = ROOT / "var" / "ci"
CI = os.environ.get("CI", "").strip().lower() in {"1", "true", "yes", "on"}
CHROMIUM = Path("/usr/bin/chromium")
PG_HOST, PG_PORT = "127.0.0.1", 5432
REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
LANES = ["ruff", "check", "migrations", "imports", "sqlite", "postgres", "integration", "browser"]
# Generous ceilings so a hung lane cannot hold CI for ever (the whole run must stay under 30 minutes).
TIMEOUTS = {"sqlite": 15 * 60, "postgres": 15 * 60, "integration": 10 * 60, "browser": 10 * 60}


@dataclass
class Result:
    lane: str
    status: str = "passed"  # passed | failed | skipped
    seconds: float = 0.0
    passed: int = 0
    failed: int = 0
    skipped: int = 0
    notes: list[str] = field(default_factory=list)


def say(msg: str = "") -> None:
    print(msg, flush=True)


def header(lane: str, what: str) -> None:
    say()
    say("=" * 100)
    say(f"== lane {lane}: {what}")
    say("=" * 100)


def lane_env(**extra: str) -> dict[str, str]:
    """The environment of a lane: the embedded defaults, whatever the developer's shell exports."""
    env = dict(os.environ)
    for name in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "PORTAL_ENV", "DJANGO_DEBUG", "SMS_BACKEND"):
        env.pop(name, None)
    env.update(
        DJANGO_SETTINGS_MODULE="portal.settings",
        PYTHONPATH=str(ROOT),
        PYTHONUNBUFFERED="1",
        SQLITE_TEST_NAME="",
        CELERY_TASK_ALWAYS_EAGER="1",
        PORTAL_VAR_DIR=str(ROOT / "var"),
    )
    env.update(extra)
    return env


def run(cmd: list[str], env: dict[str, str] | None = None, timeout: int | None = None) -> int:
    say("$ " + " ".join(cmd))
    try:
        return subprocess.run(cmd, cwd=ROOT, env=env or lane_env(), timeout=timeout).returncode
    except subprocess.TimeoutExpired:
        say(f"!! timed out after {timeout} s")
        return 124


def reachable(host: str, port: int, timeout: float = 2.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_for(host: str, port: int, seconds: float = 30.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if reachable(host, port):
            return True
        time.sleep(0.5)
    return False


def _privileged(cmd: list[str]) -> list[str]:
    if os.geteuid() == 0 or not shutil.which("sudo"):
        return cmd
    return ["sudo", "-n", *cmd]


def start_postgres() -> None:
    versions = sorted(p.name for p in Path("/etc/postgresql").glob("*")) if Path("/etc/postgresql").is_dir() else []
    if not versions or not shutil.which("pg_ctlcluster"):
        say("!! PostgreSQL is not installed (no /etc/postgresql, no pg_ctlcluster)")
        return
    for version in versions:
        run(_privileged(["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "start"]), env=dict(os.environ))


def start_redis() -> None:
    if not shutil.which("redis-server"):
        say("!! redis-server is not installed")
        return
    run(
        [
            "redis-server",
            "--daemonize",
            "yes",
            "--bind",
            "127.0.0.1",
            "-::1",
            "--port",
            str(REDIS_PORT),
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        env=dict(os.environ),
    )


def _has_cjk_font() -> bool:
    if not shutil.which("fc-list"):
        return False
    out = subprocess.run(["fc-list", ":lang=zh"], capture_output=True, text=True).stdout
    return bool(out.strip())


def install_browser_packages() -> None:
    """Debian's chromium, and a Chinese font so that screenshots of Chinese pages are legible."""
    packages = [] if CHROMIUM.exists() else ["chromium"]
    if not _has_cjk_font():
        packages.append("fonts-wqy-microhei")
    if not packages:
        return
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    if run(_privileged(["apt-get", "update"]), env=env) == 0:
        run(_privileged(["apt-get", "install", "-y", "--no-install-recommends", *packages]), env=env)


def parse_junit(path: Path, result: Result) -> list[str]:
    """Fill the counts from pytest's junit XML; return the ids of skipped tests."""
    skipped_ids: list[str] = []
    if not path.exists():
        result.notes.append("no junit report (pytest crashed before writing it)")
        return skipped_ids
    root = ET.parse(path).getroot()
    for case in root.iter("testcase"):
        outcome = {child.tag for child in case}
        if outcome & {"failure", "error"}:
            result.failed += 1
        elif "skipped" in outcome:
            result.skipped += 1
            skipped_ids.append(f"{case.get('classname')}::{case.get('name')}")
        else:
            result.passed += 1
    return skipped_ids


def pytest_lane(result: Result, marker: str, extra: list[str], env: dict[str, str]) -> None:
    REPORTS.mkdir(parents=True, exist_ok=True)
    junit = REPORTS / f"{result.lane}.xml"
    junit.unlink(missing_ok=True)
    cmd = [PY, "-m", "pytest", "-m", marker, "-q", "-rfEs", f"--junitxml={junit}", "-o", "junit_family=xunit2"]
    if CI:
        cmd += ["-p", "no:randomly"]
    rc = run(cmd + extra, env=env, timeout=TIMEOUTS.get(result.lane))
    skipped_ids = parse_junit(junit, result)
    if rc == 5:  # no test collected: not a failure of the lane's code, but say so
        result.notes.append("no tests collected")
        rc = 0
    if rc != 0:
        result.status = "failed"
        if result.failed == 0:
            result.failed = 1
            result.notes.append(f"pytest exited {rc}")
    if CI and skipped_ids:
        result.status = "failed"
        result.notes.append(f"{len(skipped_ids)} skipped test(s); CI=true skips nothing")
        for test_id in skipped_ids:
            say(f"!! skipped in CI: {test_id}")


def lane_ruff(result: Result, extra: list[str]) -> None:
    header("ruff", "lint the whole tree")
    if run([PY, "-m", "ruff", "check", "."]) != 0:
        result.status = "failed"


def lane_check(result: Result, extra: list[str]) -> None:
    header("check", "manage.py check")
    if run([PY, "manage.py", "check", "--fail-level", "WARNING"]) != 0:
        result.status = "failed"


def lane_migrations(result: Result, extra: list[str]) -> None:
    header("migrations", "every model change has its migration")
    if run([PY, "manage.py", "makemigrations", "--check", "--dry-run"]) != 0:
        result.status = "failed"


def lane_imports(result: Result, extra: list[str]) -> None:
    header("imports", "import-linter contracts (architecture.md dependency direction)")
    if run([str(BIN / "lint-imports")]) != 0:
        result.status = "failed"


def lane_sqlite(result: Result, extra: list[str]) -> None:
    header("sqlite", "the suite on SQLite (not integration, not browser)")
    pytest_lane(result, "not integration and not browser", extra, lane_env())


def services_ready(result: Result) -> bool:
    """PostgreSQL and Redis reachable (with CI, started when they are not); else the lane fails (CI) or is
    skipped."""
    if CI:
        if not reachable(PG_HOST, PG_PORT):
            say("PostgreSQL is not running: starting it")
            start_postgres()
        if not reachable(REDIS_HOST, REDIS_PORT):
            say("Redis is not running: starting it")
            start_redis()
    missing = [
        name
        for name, host, port in (("PostgreSQL", PG_HOST, PG_PORT), ("Redis", REDIS_HOST, REDIS_PORT))
        if not wait_for(host, port, 30 if CI else 1)
    ]
    if missing:
        message = f"{' and '.join(missing)} not reachable on 127.0.0.1"
        if CI:
            result.status = "failed"
            result.notes.append(message)
            say(f"!! {message}: the {result.lane} lane FAILS (CI=true)")
        else:
            result.status = "skipped"
            result.notes.append(message)
            say(f"-- SKIPPED: {message}. Start them, or run with CI=true to have this script start them.")
        return False
    return True


def lane_postgres(result: Result, extra: list[str]) -> None:
    header("postgres", "the sqlite lane's suite on PostgreSQL (tasks eager; SQLite-only tests left out)")
    if not services_ready(result):
        return
    # Only the database differs from the sqlite lane (same cache, same eager tasks).
    env = lane_env(
        DATABASE_URL=f"postgres://postgres@{PG_HOST}:{PG_PORT}/portal_ci_unit_{os.getpid()}_{int(time.time())}"
    )
    pytest_lane(result, "not integration and not browser and not sqlite_only", ["--create-db", *extra], env)


def lane_integration(result: Result, extra: list[str]) -> None:
    header("integration", "PostgreSQL, Redis and a real Celery worker")
    if not services_ready(result):
        return
    database = f"portal_ci_{os.getpid()}_{int(time.time())}"
    env = lane_env(
        DATABASE_URL=f"postgres://postgres@{PG_HOST}:{PG_PORT}/{database}",
        REDIS_URL=f"redis://{REDIS_HOST}:{REDIS_PORT}/15",
        CELERY_BROKER_URL=f"redis://{REDIS_HOST}:{REDIS_PORT}/14",
        CELERY_TASK_ALWAYS_EAGER="0",
    )
    pytest_lane(result, "integration", ["--create-db", *extra], env)


def lane_browser(result: Result, extra: list[str]) -> None:
    header("browser", "Playwright driving Debian's Chromium, headless")
    if CI and (not CHROMIUM.exists() or not _has_cjk_font()):
        say(f"installing what the browser lane lacks (chromium: {CHROMIUM.exists()}, CJK font: {_has_cjk_font()})")
        install_browser_packages()
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} not found (apt-get install chromium)"
        if CI:
            result.status = "failed"
            result.notes.append(message)
            say(f"!! {message}: the browser lane FAILS (CI=true)")
        else:
            result.status = "skipped"
            result.notes.append(message)
            say(f"-- SKIPPED: {message}")
        return
    env = lane_env(DJANGO_ALLOW_ASYNC_UNSAFE="true", PORTAL_CHROMIUM=str(CHROMIUM))
    pytest_lane(result, "browser", extra, env)


RUNNERS = {
    "ruff": lane_ruff,
    "check": lane_check,
    "migrations": lane_migrations,
    "imports": lane_imports,
    "sqlite": lane_sqlite,
    "postgres": lane_postgres,
    "integration": lane_integration,
    "browser": lane_browser,
}


def main(argv: list[str]) -> int:
    if "--" in argv:
        cut = argv.index("--")
        names, extra = argv[:cut], argv[cut + 1 :]
    else:
        names, extra = argv, []
    unknown = [n for n in names if n not in RUNNERS]
    if unknown:
        say(f"unknown lane(s) {unknown}; lanes are {', '.join(LANES)}")
        return 2
    selected = [n for n in LANES if n in names] or LANES
    say(f"lanes: {', '.join(selected)}   CI={'true' if CI else 'false'}   python {sys.version.split()[0]}")
    started = time.monotonic()
    results = []
    for name in selected:
        result = Result(name)
        t0 = time.monotonic()
        RUNNERS[name](result, extra)
        result.seconds = time.monotonic() - t0
        results.append(result)

    say()
    say("=" * 100)
    say("== summary")
    say("=" * 100)
    say(f"{'lane':<12} {'result':<8} {'time':>8}  {'passed':>6} {'failed':>6} {'skipped':>7}  notes")
    for r in results:
        counts = (
            f"{r.passed:>6} {r.failed:>6} {r.skipped:>7}"
            if r.lane in {"sqlite", "postgres", "integration", "browser"}
            else " " * 21
        )
        say(f"{r.lane:<12} {r.status:<8} {r.seconds:>7.1f}s  {counts}  {'; '.join(r.notes)}")
    say(f"total {time.monotonic() - started:.1f}s")
    failed_lanes = [r.lane for r in results if r.status == "failed"]
    if failed_lanes:
        say(f"FAILED lanes: {', '.join(failed_lanes)}")
    say(f"{sum(r.passed for r in results)} passed, {sum(r.failed for r in results)} failed")
    return 1 if failed_lanes else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
