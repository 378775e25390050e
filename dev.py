#!/usr/bin/env python3
"""Set up and run the portal, or its whole test suite, on a machine that has only Python.

    python3 dev.py serve   # set up, load demo data, serve http://127.0.0.1:8000 with a worker
    python3 dev.py test    # set up and run every test lane

Runs with any Python 3; the virtual environment is made with Python 3.12 or newer (Django 6
needs it), found on PATH or under pyenv. Everything lives in .venv/ and var/ (both git-ignored).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
VAR = ROOT / "var"
PY = VENV / "bin" / "python"
MIN_PY = (3, 12)


def say(msg: str) -> None:
    print(f"[dev] {msg}", flush=True)


def run(cmd: list[str], env: dict | None = None, check: bool = True) -> int:
    say(" ".join(str(c) for c in cmd))
    result = subprocess.run(cmd, cwd=ROOT, env=env)
    if check and result.returncode != 0:
        sys.exit(result.returncode)
    return result.returncode


def _version(exe: str) -> tuple[int, int] | None:
    try:
        out = subprocess.run(
            [exe, "-c", "import sys; print(sys.version_info[0], sys.version_info[1])"],
            capture_output=True,
            text=True,
            timeout=20,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:
        return None
    major, minor = out.stdout.split()
    return int(major), int(minor)


def find_python() -> str:
    """An interpreter of 3.12 or newer: this one, one on PATH, or one pyenv installed."""
    if sys.version_info[:2] >= MIN_PY:
        return sys.executable
    candidates = [shutil.which(n) for n in ("python3.14", "python3.13", "python3.12")]
    pyenv_root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    candidates += sorted((str(p) for p in pyenv_root.glob("versions/3.*/bin/python3")), reverse=True)
    candidates += [str(p) for p in sorted(Path("/usr/bin").glob("python3.1[2-9]"), reverse=True)]
    for exe in filter(None, candidates):
        version = _version(exe)
        if version and version >= MIN_PY:
            return exe
    sys.exit("Python 3.12 or newer is needed (Django 6). Install one and run this again.")


def ensure_venv() -> None:
    """Create .venv and install the project with its development extras when pyproject changed."""
    if PY.exists() and (_version(str(PY)) or (0, 0)) < MIN_PY:
        shutil.rmtree(VENV)
    if not PY.exists():
        run([find_python(), "-m", "venv", str(VENV)])
        run([str(PY), "-m", "pip", "install", "--quiet", "--upgrade", "pip"])
    stamp = VENV / ".installed"
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if not stamp.exists() or stamp.read_text() != digest:
        run([str(PY), "-m", "pip", "install", "--quiet", "-e", ".[dev]"])
        stamp.write_text(digest)


def base_env(**extra: str) -> dict:
    env = dict(os.environ)
    env.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    env.update(extra)
    return env


def manage(*args: str, env: dict | None = None, check: bool = True) -> int:
    return run([str(PY), "manage.py", *args], env=env or base_env(), check=check)


def setup(env: dict) -> None:
    VAR.mkdir(exist_ok=True)
    ensure_venv()
    manage("compile_catalogs", env=env)
    manage("migrate", "--noinput", env=env)


def wait_for_server(url: str, procs: list[subprocess.Popen], timeout: float = 90) -> bool:
    """Poll ``url`` until it answers 200, or a process died, or ``timeout`` passed."""
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(p.poll() is not None for p in procs):
            return False
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return True
        except OSError:
            pass
        time.sleep(0.5)
    say(f"the server did not answer at {url} within {timeout:.0f} s")
    return False


def serve() -> None:
    env = base_env(DJANGO_DEBUG=os.environ.get("DJANGO_DEBUG", "1"), PYTHONUNBUFFERED="1")
    setup(env)
    manage("seed_demo", env=env)
    procs: list[subprocess.Popen] = []
    try:
        worker = [
            str(PY),
            "-m",
            "celery",
            "-A",
            "portal",
            "worker",
            "-B",
            "--pool=solo",
            "--loglevel=INFO",
            "--schedule",
            str(VAR / "celerybeat-schedule"),
        ]
        say("starting the background worker")
        procs.append(subprocess.Popen(worker, cwd=ROOT, env=env))
        say("serving http://127.0.0.1:8000 (Ctrl-C stops the server and the worker)")
        procs.append(
            subprocess.Popen([str(PY), "manage.py", "runserver", "127.0.0.1:8000", "--noreload"], cwd=ROOT, env=env)
        )
        if wait_for_server("http://127.0.0.1:8000/health/", procs):
            # 30 days of cardholder payments through the sandbox, delivered as signed
            # notifications to the running portal (idempotent: a re-run adds only what is new).
            manage("seed_payments_demo", env=env, check=False)
            manage("sandbox_traffic", "--days", "30", "--per-day", "20", env=env, check=False)
        manage("seed_demo", "--accounts-only", env=env)
        say("ready: http://127.0.0.1:8000 (Ctrl-C stops the server and the worker)")
        while all(p.poll() is None for p in procs):
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()


def test(extra: list[str]) -> None:
    env = base_env(SQLITE_TEST_NAME="", CELERY_TASK_ALWAYS_EAGER="1")
    setup(env)
    sys.exit(run([str(PY), str(ROOT / ".ci" / "lanes.py"), *extra], env=env, check=False))


def main() -> None:
    command = sys.argv[1] if len(sys.argv) > 1 else "serve"
    if command == "serve":
        serve()
    elif command == "test":
        test(sys.argv[2:])
    elif command == "setup":
        setup(base_env())
    else:
        sys.exit(f"usage: {sys.argv[0]} serve | test [lane ...] | setup")


if __name__ == "__main__":
    main()
