"""Inventory of the ACP gateway's keys and certificates, and the rules they must meet (security check E2).

The inventory lists what the settings point at: the portal's signing key and certificate (``ACP_SIGN_PKCS12_PATH``,
or ``ACP_SIGN_KEY_PATH`` + ``ACP_SIGN_CERT_PATH``) and every trusted certificate (``ACP_ROOT_CERT_PATHS``,
``ACP_MIDDLE_CERT_PATHS``, ``ACP_VERIFY_CERT_PATHS``; a file may hold a PEM bundle). Files are loaded as
:mod:`payments.gateway.config` loads them, so a file that passes here is one the gateway can use.

Rules (each finding has a number; the Django check id is ``payments.E<n>`` for an error, ``payments.W<n>`` for a
warning):

* 010: the file is missing, unreadable or not a key/certificate (the message names the setting, never a password
  nor key material);
* 011: the key is weak: RSA below 2048 bits, an elliptic curve below 256 bits, or another algorithm (the signing key
  must be RSA: ``signMethod=01``);
* 012: a root or middle certificate is signed with SHA-1 or MD5 (warning);
* 013: the signing certificate has a key usage extension without ``digitalSignature``;
* 014: expired; 015: not yet valid; 016: expires within ``ACP_CERT_EXPIRY_WARNING_DAYS`` days (warning);
* 017: the private key does not belong to the signing certificate.

Files of the embedded sandbox (inside ``SANDBOX_DIR`` while ``SANDBOX_ENABLED``) are generated on first use: they
are left out while missing and their findings are warnings at most. Pure reading: nothing here writes, except
:func:`certificates_audit_expiring`, the daily job's service.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from .acp.errors import ACPConfigurationError
from .acp.signing import cert_id_of, load_certificates

logger = logging.getLogger(__name__)

ERROR = "error"
WARNING = "warning"

ROLE_SIGNING = "signing"
ROLE_ROOT = "root"
ROLE_MIDDLE = "middle"
ROLE_VERIFY = "verify"

MIN_RSA_BITS = 2048
MIN_EC_BITS = 256
WEAK_SIGNATURE_HASHES = (hashes.SHA1, hashes.MD5)

AUDIT_ACTION_EXPIRING = "acp.certificate_expiring"
AUDIT_OBJECT_TYPE = "acp.certificate"
AUDIT_ACTOR = "system"

# Rule numbers (see the module docstring).
UNREADABLE = "010"
WEAK_KEY = "011"
WEAK_SIGNATURE = "012"
KEY_USAGE = "013"
EXPIRED = "014"
NOT_YET_VALID = "015"
EXPIRING = "016"
KEY_MISMATCH = "017"


@dataclass(frozen=True)
class CertificateItem:
    """One inventoried certificate (or, with ``problem``, a file that could not be read).

    ``setting`` names where it comes from; for the signing certificate ``key_matches`` and ``private_key_desc``
    describe its private key (the key itself is not kept).
    """

    setting: str
    path: str
    role: str
    sandbox: bool
    certificate: x509.Certificate | None = None
    problem: str = ""
    key_matches: bool | None = None
    private_key_desc: str = ""
    private_key_weak: bool = False

    @property
    def label(self) -> str:
        return f"{self.setting} (sandbox)" if self.sandbox else self.setting


@dataclass(frozen=True)
class Finding:
    """A rule an item breaks. ``level`` is already lowered to a warning for the sandbox's files."""

    number: str
    level: str
    item: CertificateItem
    message: str
    hint: str = ""

    @property
    def check_id(self) -> str:
        return f"payments.{'E' if self.level == ERROR else 'W'}{self.number}"


@dataclass(frozen=True)
class Inventory:
    items: list[CertificateItem] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.level == ERROR]


# --- describing ---------------------------------------------------------------------------------------------------


def fingerprint_sha256(cert: x509.Certificate) -> str:
    """SHA-256 fingerprint in lowercase hex, without separators."""
    return cert.fingerprint(hashes.SHA256()).hex()


def fingerprint_display(cert: x509.Certificate) -> str:
    """SHA-256 fingerprint as ``openssl x509 -fingerprint -sha256`` prints it (``AB:CD:...``)."""
    return ":".join(f"{b:02X}" for b in cert.fingerprint(hashes.SHA256()))


def key_description(key) -> str:
    """ "RSA 2048", "EC secp256r1 256", "Ed25519" ... of a public or private key."""
    if isinstance(key, rsa.RSAPublicKey | rsa.RSAPrivateKey):
        return f"RSA {key.key_size}"
    if isinstance(key, ec.EllipticCurvePublicKey | ec.EllipticCurvePrivateKey):
        return f"EC {key.curve.name} {key.curve.key_size}"
    if isinstance(key, ed25519.Ed25519PublicKey | ed25519.Ed25519PrivateKey):
        return "Ed25519"
    if isinstance(key, ed448.Ed448PublicKey | ed448.Ed448PrivateKey):
        return "Ed448"
    return type(key).__name__


def _key_is_weak(key, *, rsa_only: bool) -> bool:
    if isinstance(key, rsa.RSAPublicKey | rsa.RSAPrivateKey):
        return key.key_size < MIN_RSA_BITS
    if rsa_only:
        return True
    if isinstance(key, ec.EllipticCurvePublicKey | ec.EllipticCurvePrivateKey):
        return key.curve.key_size < MIN_EC_BITS
    return not isinstance(
        key, ed25519.Ed25519PublicKey | ed25519.Ed25519PrivateKey | ed448.Ed448PublicKey | ed448.Ed448PrivateKey
    )


def _public_key(cert: x509.Certificate):
    try:
        return cert.public_key()
    except (ValueError, UnsupportedAlgorithm):
        return None  # e.g. an SM2 key, which cryptography does not read


def certificate_key_description(cert: x509.Certificate) -> str:
    """The certificate's public key as :func:`key_description` puts it, or "unsupported"."""
    public = _public_key(cert)
    return key_description(public) if public is not None else "unsupported"


def _same_key(private_key, cert: x509.Certificate) -> bool:
    public = _public_key(cert)
    if public is None:
        return False
    spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    return private_key.public_key().public_bytes(*spki) == public.public_bytes(*spki)


def business_time(value: datetime) -> datetime:
    """``value`` in the business time zone (Beijing)."""
    return value.astimezone(ZoneInfo(settings.BUSINESS_TIME_ZONE))


def days_left(cert: x509.Certificate, now: datetime) -> int:
    """Whole days until the certificate expires (negative once expired)."""
    return (cert.not_valid_after_utc - now) // timedelta(days=1)


# --- loading ------------------------------------------------------------------------------------------------------


def _is_sandbox_file(path: str) -> bool:
    if not settings.SANDBOX_ENABLED:
        return False
    try:
        return Path(path).resolve().is_relative_to(Path(settings.SANDBOX_DIR).resolve())
    except (OSError, RuntimeError):
        return False


def _read(path: str) -> tuple[bytes | None, str]:
    try:
        return Path(path).read_bytes(), ""
    except FileNotFoundError:
        return None, "the file does not exist"
    except IsADirectoryError:
        return None, "the path is a directory"
    except PermissionError:
        return None, "the file cannot be read (permission denied)"
    except OSError as exc:
        return None, f"the file cannot be read ({exc.strerror or type(exc).__name__})"


def _unreadable(setting: str, path: str, role: str, sandbox: bool, problem: str) -> CertificateItem:
    return CertificateItem(setting=setting, path=path, role=role, sandbox=sandbox, problem=problem)


def _signing_items() -> list[CertificateItem]:
    pkcs12_path = settings.ACP_SIGN_PKCS12_PATH
    key_path, cert_path = settings.ACP_SIGN_KEY_PATH, settings.ACP_SIGN_CERT_PATH
    if pkcs12_path:
        return [_load_pkcs12(pkcs12_path)]
    if key_path and cert_path:
        item = _load_pem_pair(key_path, cert_path)
        return [item] if item is not None else []
    if key_path or cert_path:
        setting, path = ("ACP_SIGN_KEY_PATH", key_path) if key_path else ("ACP_SIGN_CERT_PATH", cert_path)
        missing = "ACP_SIGN_CERT_PATH" if key_path else "ACP_SIGN_KEY_PATH"
        return [_unreadable(setting, path, ROLE_SIGNING, False, f"{missing} is not set: give both, or a PKCS#12 file")]
    return []  # not configured: payments.W002 says so in production


def _load_pkcs12(path: str) -> CertificateItem:
    setting, sandbox = "ACP_SIGN_PKCS12_PATH", _is_sandbox_file(path)
    data, problem = _read(path)
    if data is None:
        return _unreadable(setting, path, ROLE_SIGNING, sandbox, problem)
    try:
        password = settings.ACP_SIGN_PKCS12_PASSWORD.encode("utf-8") or None
        key, cert, extra = pkcs12.load_key_and_certificates(data, password)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        return _unreadable(
            setting, path, ROLE_SIGNING, sandbox, "cannot open it: wrong ACP_SIGN_PKCS12_PASSWORD or not PKCS#12"
        )
    if key is None:
        return _unreadable(setting, path, ROLE_SIGNING, sandbox, "the PKCS#12 file holds no private key")
    candidates = ([cert] if cert is not None else []) + list(extra or [])
    if not candidates:
        return _unreadable(setting, path, ROLE_SIGNING, sandbox, "the PKCS#12 file holds no certificate")
    # As Signer.from_pkcs12: the certificate of the key, wherever it sits in the file.
    chosen = next((c for c in candidates if _same_key(key, c)), candidates[0])
    return _signing_item(setting, path, sandbox, key, chosen)


def _load_pem_pair(key_path: str, cert_path: str) -> CertificateItem | None:
    sandbox = _is_sandbox_file(cert_path) and _is_sandbox_file(key_path)
    if sandbox and not (Path(key_path).exists() and Path(cert_path).exists()):
        return None  # generated on first use
    cert_data, problem = _read(cert_path)
    if cert_data is None:
        return _unreadable("ACP_SIGN_CERT_PATH", cert_path, ROLE_SIGNING, sandbox, problem)
    try:
        cert = load_certificates(cert_data)[0]
    except ACPConfigurationError:
        return _unreadable("ACP_SIGN_CERT_PATH", cert_path, ROLE_SIGNING, sandbox, "not a PEM or DER certificate")
    key_data, problem = _read(key_path)
    if key_data is None:
        return _unreadable("ACP_SIGN_KEY_PATH", key_path, ROLE_SIGNING, sandbox, problem)
    try:
        # Without a password, as payments.gateway.config.portal_signer loads it.
        key = serialization.load_pem_private_key(key_data, None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        return _unreadable("ACP_SIGN_KEY_PATH", key_path, ROLE_SIGNING, sandbox, "not an unencrypted PEM private key")
    return _signing_item("ACP_SIGN_CERT_PATH", cert_path, sandbox, key, cert)


def _signing_item(setting: str, path: str, sandbox: bool, key, cert: x509.Certificate) -> CertificateItem:
    return CertificateItem(
        setting=setting,
        path=path,
        role=ROLE_SIGNING,
        sandbox=sandbox,
        certificate=cert,
        key_matches=_same_key(key, cert),
        private_key_desc=key_description(key),
        private_key_weak=_key_is_weak(key, rsa_only=True),
    )


def _trusted_items(setting: str, paths: Iterable[str], role: str) -> list[CertificateItem]:
    items = []
    for path in paths:
        if not path:
            continue
        sandbox = _is_sandbox_file(path)
        if sandbox and not Path(path).exists():
            continue  # generated on first use
        data, problem = _read(path)
        if data is None:
            items.append(_unreadable(setting, path, role, sandbox, problem))
            continue
        try:
            certs = load_certificates(data)
        except ACPConfigurationError:
            certs = []
        if not certs:
            items.append(_unreadable(setting, path, role, sandbox, "not a PEM or DER certificate"))
        items.extend(
            CertificateItem(setting=setting, path=path, role=role, sandbox=sandbox, certificate=c) for c in certs
        )
    return items


def certificate_items() -> list[CertificateItem]:
    """Every key and certificate the ACP settings name, in the order: signing, root, middle, verify."""
    items = _signing_items()
    items += _trusted_items("ACP_ROOT_CERT_PATHS", settings.ACP_ROOT_CERT_PATHS, ROLE_ROOT)
    items += _trusted_items("ACP_MIDDLE_CERT_PATHS", settings.ACP_MIDDLE_CERT_PATHS, ROLE_MIDDLE)
    items += _trusted_items("ACP_VERIFY_CERT_PATHS", settings.ACP_VERIFY_CERT_PATHS, ROLE_VERIFY)
    return items


# --- rules --------------------------------------------------------------------------------------------------------


def _stamp(value: datetime) -> str:
    return business_time(value).strftime("%Y-%m-%d %H:%M") + " Beijing"


def evaluate(item: CertificateItem, *, now: datetime, warning_days: int) -> list[Finding]:
    """The rules ``item`` breaks at ``now`` (aware)."""
    found: list[tuple[str, str, str, str]] = []  # (number, level, message, hint)
    where = f"{item.setting} ({item.path})"
    cert = item.certificate
    if cert is None:
        found.append((UNREADABLE, ERROR, f"{where}: {item.problem}.", f"Fix the file or the value of {item.setting}."))
    else:
        serial = cert_id_of(cert)
        what = f"{where}: certificate {serial}"
        public = _public_key(cert)
        weak = public is None or _key_is_weak(public, rsa_only=item.role == ROLE_SIGNING) or item.private_key_weak
        if weak:
            desc = key_description(public) if public is not None else "an unreadable key"
            if item.private_key_desc and item.key_matches is False:
                desc += f", private key {item.private_key_desc}"
            found.append(
                (
                    WEAK_KEY,
                    ERROR,
                    f"{what} has a weak key ({desc}).",
                    f"Use RSA of at least {MIN_RSA_BITS} bits"
                    + ("." if item.role == ROLE_SIGNING else f" or an elliptic curve of at least {MIN_EC_BITS} bits."),
                )
            )
        if item.role in (ROLE_ROOT, ROLE_MIDDLE):
            try:
                algorithm = cert.signature_hash_algorithm
            except UnsupportedAlgorithm:
                algorithm = None
            if isinstance(algorithm, WEAK_SIGNATURE_HASHES):
                found.append(
                    (
                        WEAK_SIGNATURE,
                        WARNING,
                        f"{what} is signed with {algorithm.name.upper()}.",
                        "Ask the network for its SHA-256 certificates.",
                    )
                )
        if item.role == ROLE_SIGNING:
            try:
                usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
            except x509.ExtensionNotFound:
                usage = None
            if usage is not None and not usage.digital_signature:
                found.append(
                    (
                        KEY_USAGE,
                        ERROR,
                        f"{what} does not allow digital signatures (key usage).",
                        "Use a signing certificate whose key usage includes digitalSignature.",
                    )
                )
            if item.key_matches is False:
                found.append(
                    (
                        KEY_MISMATCH,
                        ERROR,
                        f"{what} does not belong to the configured private key.",
                        "Configure the key and the certificate of the same pair.",
                    )
                )
        if now > cert.not_valid_after_utc:
            found.append(
                (EXPIRED, ERROR, f"{what} expired on {_stamp(cert.not_valid_after_utc)}.", "Renew it and replace it.")
            )
        elif now < cert.not_valid_before_utc:
            found.append(
                (
                    NOT_YET_VALID,
                    ERROR,
                    f"{what} is not valid before {_stamp(cert.not_valid_before_utc)}.",
                    "Check the server's clock, or wait before switching to it.",
                )
            )
        elif cert.not_valid_after_utc - now < timedelta(days=warning_days):
            found.append(
                (
                    EXPIRING,
                    WARNING,
                    f"{what} expires on {_stamp(cert.not_valid_after_utc)}, in {days_left(cert, now)} days.",
                    "Renew it before it expires (ACP_CERT_EXPIRY_WARNING_DAYS sets this warning).",
                )
            )
    return [
        Finding(number=number, level=WARNING if item.sandbox else level, item=item, message=message, hint=hint)
        for number, level, message, hint in found
    ]


def certificate_inventory(*, now: datetime | None = None) -> Inventory:
    """The inventory and every finding at ``now`` (default: now)."""
    now = now or timezone.now()
    warning_days = settings.ACP_CERT_EXPIRY_WARNING_DAYS
    items = certificate_items()
    findings = [f for item in items for f in evaluate(item, now=now, warning_days=warning_days)]
    return Inventory(items=items, findings=findings)


# --- the daily job ------------------------------------------------------------------------------------------------


def certificates_audit_expiring(*, now: datetime | None = None) -> int:
    """Log a warning and write one ``acp.certificate_expiring`` audit event (system actor) for every inventoried
    certificate that expires within ``ACP_CERT_EXPIRY_WARNING_DAYS`` days or has expired; return how many events.

    At most one event per certificate (by SHA-256 fingerprint) and Beijing day: a second run the same day, or two
    runs at once, writes nothing more.
    """
    from portal.audit.models import AuditChainHead, AuditEvent
    from portal.audit.services import audit_record

    now = now or timezone.now()
    window = timedelta(days=settings.ACP_CERT_EXPIRY_WARNING_DAYS)
    day = business_time(now).date()
    day_start = datetime.combine(day, time.min, tzinfo=ZoneInfo(settings.BUSINESS_TIME_ZONE))
    written = 0
    for item in certificate_items():
        cert = item.certificate
        if cert is None or cert.not_valid_after_utc - now >= window:
            continue
        fingerprint = fingerprint_sha256(cert)
        left = days_left(cert, now)
        with transaction.atomic():
            # Take the audit chain's lock first (as audit_record does), so that two runs cannot both find no event.
            AuditChainHead.objects.filter(pk=1).update(last_sequence=F("last_sequence"))
            if AuditEvent.objects.filter(
                action=AUDIT_ACTION_EXPIRING,
                object_type=AUDIT_OBJECT_TYPE,
                object_id=fingerprint,
                occurred_at__gte=day_start,
                occurred_at__lt=day_start + timedelta(days=1),
            ).exists():
                continue
            audit_record(
                action=AUDIT_ACTION_EXPIRING,
                actor=None,
                actor_repr=AUDIT_ACTOR,
                object_type=AUDIT_OBJECT_TYPE,
                object_id=fingerprint,
                details={
                    "setting": item.setting,
                    "path": item.path,
                    "cert_id": cert_id_of(cert),
                    "subject": cert.subject.rfc4514_string(),
                    "not_after": cert.not_valid_after_utc.isoformat(),
                    "days_left": left,
                    "expired": now > cert.not_valid_after_utc,
                    "sandbox": item.sandbox,
                },
            )
        written += 1
        logger.warning(
            "ACP certificate %s of %s %s on %s (%d days left); fingerprint SHA-256 %s",
            cert_id_of(cert),
            item.setting,
            "expired" if now > cert.not_valid_after_utc else "expires",
            _stamp(cert.not_valid_after_utc),
            left,
            fingerprint,
        )
    return written
