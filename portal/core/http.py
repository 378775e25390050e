"""Process-wide HTTP clients for calls to outside services (the card network, SMS providers).

Building an ``httpx.Client`` loads the CA bundle into a new TLS context: tens of milliseconds of CPU, more
than the call it serves. One client per set of options and per process is built once and kept, with its
connection pool. Clients are keyed by process id as well, so a Celery prefork child or a gunicorn worker
never uses a pool (and sockets) inherited from its parent. ``httpx.Client`` is thread-safe.
"""

from __future__ import annotations

import os
import threading

import httpx

_clients: dict[tuple, httpx.Client] = {}
_lock = threading.Lock()


def shared_client(*, timeout: float, connect_timeout: float | None = None, verify: bool | str = True) -> httpx.Client:
    """The process's client for these options (never close it; ``close_shared_clients`` does)."""
    key = (os.getpid(), timeout, connect_timeout, verify)
    client = _clients.get(key)
    if client is None:
        with _lock:
            client = _clients.get(key)
            if client is None:
                client = httpx.Client(
                    timeout=httpx.Timeout(timeout, connect=connect_timeout if connect_timeout is not None else timeout),
                    verify=verify,
                    follow_redirects=False,
                )
                _clients[key] = client
    return client


def close_shared_clients() -> None:
    """Close this process's clients (tests, shutdown); the next call builds new ones."""
    with _lock:
        pid = os.getpid()
        for key in [k for k in _clients if k[0] == pid]:
            _clients.pop(key).close()
