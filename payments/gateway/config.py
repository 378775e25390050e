"""The portal's ACP gateway configuration, built from Django settings (``ACP_*``, ``SANDBOX_*``).

In the embedded default (``SANDBOX_ENABLED``) every path points into ``SANDBOX_DIR``, and the files are created on
first use: the sandbox CA (``root.crt``, ``middle.crt``, ``sign.crt``, ``sign.key``, by
:func:`payments.gateway.acp.testing.generate_ca`) and the portal's own signing certificate (``portal_sign.crt`` /
``portal_sign.key``, self-signed: the sandbox knows it by ``certId``, as the network knows a merchant's certificate).
In production nothing is generated and a missing setting raises ``ImproperlyConfigured``.

Signers and verifiers are cached per settings values (loading keys costs milliseconds, verification caches chains).
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from portal.core.http import shared_client

from .acp.client import GatewayClient, GatewayConfig
from .acp.signing import Signer, Verifier, load_certificate_files
from .acp.testing import cert_pem, generate_ca, issue_certificate, key_pem, merchant_cn, new_key

PORTAL_SIGN_CERT = "portal_sign.crt"
PORTAL_SIGN_KEY = "portal_sign.key"
#: certId-style id of the portal in the CN of its self-signed sandbox certificate.
PORTAL_CN_ID = "000000000000000"

_lock = threading.Lock()
_cache: dict[tuple, object] = {}


def sandbox_dir() -> Path:
    return Path(settings.SANDBOX_DIR)


def ensure_sandbox_material(directory: Path | None = None) -> Path:
    """Create the sandbox CA and the portal's signing certificate in ``directory`` unless they exist.

    Safe when the web process and the worker start together: a file lock serialises the first run, and
    existing files are kept so that trust survives restarts.
    """
    directory = Path(directory or sandbox_dir())
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / ".lock", "a") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        try:
            generate_ca(directory)
            cert_path, key_path = directory / PORTAL_SIGN_CERT, directory / PORTAL_SIGN_KEY
            if not (cert_path.is_file() and key_path.is_file()):
                key = new_key()
                start = datetime.now(UTC) - timedelta(days=1)
                cert = issue_certificate(
                    subject_cn=merchant_cn(PORTAL_CN_ID),
                    public_key=key.public_key(),
                    issuer_cert=None,
                    issuer_key=key,
                    not_before=start,
                    not_after=start + timedelta(days=3650),
                    ca=False,
                )
                _write(key_path, key_pem(key), 0o600)
                _write(cert_path, cert_pem(cert), 0o644)
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)
    return directory


def _write(path: Path, data: bytes, mode: int) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.replace(tmp, path)


def _ensure_files() -> None:
    if settings.SANDBOX_ENABLED:
        directory = sandbox_dir()
        if not (directory / PORTAL_SIGN_KEY).is_file() or not (directory / "sign.key").is_file():
            ensure_sandbox_material(directory)


def _cached(key: tuple, build: Callable[[], object]):
    with _lock:
        if key in _cache:
            return _cache[key]
    value = build()
    with _lock:
        _cache[key] = value
    return value


def clear_cache() -> None:
    """Forget loaded keys and certificates (tests, key rotation)."""
    with _lock:
        _cache.clear()


def _required(name: str) -> str:
    value = getattr(settings, name, "")
    if not value:
        raise ImproperlyConfigured(f"{name} must be set to use the ACP gateway.")
    return value


def portal_signer() -> Signer:
    """The portal's signing key and certificate (PKCS#12, or PEM key + certificate)."""
    _ensure_files()
    pkcs12_path = settings.ACP_SIGN_PKCS12_PATH
    key = ("signer", pkcs12_path, settings.ACP_SIGN_KEY_PATH, settings.ACP_SIGN_CERT_PATH, _mtime(pkcs12_path))
    if pkcs12_path:
        return _cached(
            key, lambda: Signer.from_files(pkcs12_path=pkcs12_path, password=settings.ACP_SIGN_PKCS12_PASSWORD)
        )
    key_path, cert_path = _required("ACP_SIGN_KEY_PATH"), _required("ACP_SIGN_CERT_PATH")
    return _cached(key + (_mtime(key_path),), lambda: Signer.from_files(key_path=key_path, cert_path=cert_path))


def portal_verifier() -> Verifier:
    """Verifies the network's answers and notifications: 5.1.0 ``signPubKeyCert`` chained to the configured root
    and middle certificates with an allowed owner; 5.0.0 by ``certId`` among ``ACP_VERIFY_CERT_PATHS``."""
    _ensure_files()
    roots, middles = tuple(settings.ACP_ROOT_CERT_PATHS), tuple(settings.ACP_MIDDLE_CERT_PATHS)
    verify, owners = tuple(settings.ACP_VERIFY_CERT_PATHS), tuple(settings.ACP_ALLOWED_OWNERS)
    if not roots or not middles:
        raise ImproperlyConfigured("ACP_ROOT_CERT_PATHS and ACP_MIDDLE_CERT_PATHS must be set to verify the gateway.")
    key = ("verifier", roots, middles, verify, owners, tuple(_mtime(p) for p in roots + middles + verify))
    return _cached(
        key,
        lambda: Verifier(
            verify_certs=load_certificate_files(verify),
            root_certs=load_certificate_files(roots),
            middle_certs=load_certificate_files(middles),
            allowed_owners=owners,
        ),
    )


def _mtime(path: str) -> float:
    try:
        return os.stat(path).st_mtime if path else 0.0
    except OSError:
        return 0.0


def gateway_config(mer_id: str) -> GatewayConfig:
    """The client configuration for requests on behalf of merchant ``mer_id``."""
    connect_timeout, read_timeout = (tuple(settings.ACP_TIMEOUTS) + (5.0, 30.0))[:2]
    return GatewayConfig(
        base_url=_required("ACP_BASE_URL"),
        signer=portal_signer(),
        verifier=portal_verifier(),
        mer_id=mer_id,
        access_type=settings.ACP_ACCESS_TYPE,
        version=settings.ACP_VERSION,
        acq_ins_code=settings.ACP_ACQ_INS_CODE or None,
        back_url=settings.ACP_BACK_URL,
        file_transfer_url=settings.ACP_FILE_TRANSFER_URL or None,
        connect_timeout=float(connect_timeout),
        read_timeout=float(read_timeout),
        verify_tls=settings.ACP_VERIFY_TLS,
    )


def _no_sleep(seconds: float) -> None:
    return None


def query_sleep() -> Callable[[float], None]:
    """The sleep between status queries: real, or a no-op when ``ACP_QUERY_SLEEP`` is off (tests)."""
    return time.sleep if settings.ACP_QUERY_SLEEP else _no_sleep


def gateway_client(mer_id: str, **kwargs) -> GatewayClient:
    """A :class:`GatewayClient` for merchant ``mer_id`` (close it, or use it as a context manager).

    It borrows the process's HTTP client for the gateway's options (``portal.core.http``): building one
    costs more CPU than a refund and its query together.
    """
    config = gateway_config(mer_id)
    kwargs.setdefault("sleep", query_sleep())
    if "transport" not in kwargs:
        kwargs.setdefault(
            "http",
            shared_client(
                timeout=config.read_timeout, connect_timeout=config.connect_timeout, verify=config.verify_tls
            ),
        )
    return GatewayClient(config, **kwargs)
