"""A small certificate authority for tests and the embedded sandbox: root → middle → signing certificate.

Mirrors UnionPay's layout (``acp_*_root.cer`` → ``acp_*_middle.cer`` → signing certificate whose CN is
``041@<id>@<owner>@<seq>``). :func:`build_ca` keeps everything in memory; :func:`generate_ca` writes exactly
``root.crt``, ``middle.crt``, ``sign.crt`` and ``sign.key`` (PEM) into a directory and :func:`load_ca_files` reads them
back. Not for production keys.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from .signing import UNIONPAY_OWNER, Signer, Verifier

DEFAULT_OWNER_CN = f"041@Z0000000000001@{UNIONPAY_OWNER}@00000001"
DEFAULT_DAYS = 3650
DEFAULT_KEY_SIZE = 2048


def merchant_cn(mer_id: str, seq: int = 1) -> str:
    """A CN in the style of UnionPay's merchant signing certificates: ``041@Z<date>@<merId>:SIGN@<seq>``."""
    return f"041@Z{datetime.now(UTC):%Y-%m-%d}@{mer_id}:SIGN@{seq:08d}"


def new_key(key_size: int = DEFAULT_KEY_SIZE) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=key_size)


def _name(cn: str, unit: str = "ACP Sandbox") -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Merchant Portal Sandbox CA"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, unit),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )


def issue_certificate(
    *,
    subject_cn: str,
    public_key: rsa.RSAPublicKey,
    issuer_cert: x509.Certificate | None,
    issuer_key: rsa.RSAPrivateKey,
    not_before: datetime,
    not_after: datetime,
    ca: bool,
    serial: int | None = None,
    path_length: int | None = None,
) -> x509.Certificate:
    """Issue one certificate (self-signed when ``issuer_cert`` is None)."""
    subject = _name(subject_cn, "ACP Sandbox CA" if ca else "ACP Sandbox Signing")
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_cert.subject if issuer_cert is not None else subject)
        .public_key(public_key)
        .serial_number(serial if serial is not None else x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=path_length if ca else None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )
    if ca:
        usage = x509.KeyUsage(False, False, False, False, False, True, True, False, False)
    else:
        usage = x509.KeyUsage(True, True, False, False, False, False, False, False, False)
    builder = builder.add_extension(usage, critical=True)
    if issuer_cert is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False
        )
    return builder.sign(issuer_key, hashes.SHA256())


@dataclass(frozen=True)
class CertificateAuthority:
    """An in-memory root → middle CA plus one signing certificate (the network's, as the sandbox plays it)."""

    root_key: rsa.RSAPrivateKey
    root_cert: x509.Certificate
    middle_key: rsa.RSAPrivateKey
    middle_cert: x509.Certificate
    sign_key: rsa.RSAPrivateKey
    sign_cert: x509.Certificate

    def issue(
        self,
        cn: str,
        *,
        not_before: datetime | None = None,
        not_after: datetime | None = None,
        days: int = DEFAULT_DAYS,
        serial: int | None = None,
        key: rsa.RSAPrivateKey | None = None,
        by_root: bool = False,
    ) -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
        """Issue another end-entity certificate from the middle (or the root): a merchant's, an expired one ..."""
        key = key or new_key()
        start = not_before or datetime.now(UTC) - timedelta(days=1)
        cert = issue_certificate(
            subject_cn=cn,
            public_key=key.public_key(),
            issuer_cert=self.root_cert if by_root else self.middle_cert,
            issuer_key=self.root_key if by_root else self.middle_key,
            not_before=start,
            not_after=not_after or start + timedelta(days=days),
            ca=False,
            serial=serial,
        )
        return key, cert

    def signer(self) -> Signer:
        """A :class:`Signer` with the signing certificate (``certId`` = its decimal serial)."""
        return Signer(self.sign_key, self.sign_cert)

    def verifier(self, **kwargs: object) -> Verifier:
        """A :class:`Verifier` trusting this CA (root + middle) and the signing certificate by ``certId``."""
        kwargs.setdefault("verify_certs", [self.sign_cert])
        return Verifier(root_certs=[self.root_cert], middle_certs=[self.middle_cert], **kwargs)  # type: ignore[arg-type]


def build_ca(
    *,
    owner_cn: str = DEFAULT_OWNER_CN,
    days: int = DEFAULT_DAYS,
    key_size: int = DEFAULT_KEY_SIZE,
    now: datetime | None = None,
    sign_serial: int | None = None,
    name: str = "ACP Sandbox",
) -> CertificateAuthority:
    """Create a root (valid ``days`` + 1 year), a middle and a signing certificate with subject CN ``owner_cn``."""
    start = (now or datetime.now(UTC)) - timedelta(days=1)
    root_key, middle_key, sign_key = new_key(key_size), new_key(key_size), new_key(key_size)
    root = issue_certificate(
        subject_cn=f"{name} Root",
        public_key=root_key.public_key(),
        issuer_cert=None,
        issuer_key=root_key,
        not_before=start,
        not_after=start + timedelta(days=days + 366),
        ca=True,
        path_length=1,
    )
    middle = issue_certificate(
        subject_cn=f"{name} Middle",
        public_key=middle_key.public_key(),
        issuer_cert=root,
        issuer_key=root_key,
        not_before=start,
        not_after=start + timedelta(days=days + 183),
        ca=True,
        path_length=0,
    )
    sign = issue_certificate(
        subject_cn=owner_cn,
        public_key=sign_key.public_key(),
        issuer_cert=middle,
        issuer_key=middle_key,
        not_before=start,
        not_after=start + timedelta(days=days),
        ca=False,
        serial=sign_serial,
    )
    return CertificateAuthority(root_key, root, middle_key, middle, sign_key, sign)


# --- files --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CaFiles:
    """Paths of the four PEM files of a CA directory."""

    directory: Path
    root_cert: Path
    middle_cert: Path
    sign_cert: Path
    sign_key: Path

    @classmethod
    def in_directory(cls, directory: Path) -> CaFiles:
        directory = Path(directory)
        return cls(
            directory,
            directory / "root.crt",
            directory / "middle.crt",
            directory / "sign.crt",
            directory / "sign.key",
        )

    def exists(self) -> bool:
        return all(path.is_file() for path in (self.root_cert, self.middle_cert, self.sign_cert, self.sign_key))

    def signer(self) -> Signer:
        return Signer.from_pem(self.sign_key.read_bytes(), self.sign_cert.read_bytes())

    def verifier(self, **kwargs: object) -> Verifier:
        """A :class:`Verifier` trusting ``root.crt`` and ``middle.crt`` (and ``sign.crt`` by ``certId``)."""
        root = x509.load_pem_x509_certificate(self.root_cert.read_bytes())
        middle = x509.load_pem_x509_certificate(self.middle_cert.read_bytes())
        kwargs.setdefault("verify_certs", [x509.load_pem_x509_certificate(self.sign_cert.read_bytes())])
        return Verifier(root_certs=[root], middle_certs=[middle], **kwargs)  # type: ignore[arg-type]


def cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def key_pem(key: rsa.RSAPrivateKey, password: bytes | None = None) -> bytes:
    """PKCS#8 PEM of ``key`` (encrypted when ``password`` is given)."""
    encryption = serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)


def to_pkcs12(
    key: rsa.RSAPrivateKey,
    cert: x509.Certificate,
    password: bytes | None,
    *,
    chain: list[x509.Certificate] | None = None,
    name: bytes = b"acp-sign",
) -> bytes:
    """A ``.pfx`` holding ``key`` and ``cert`` (like UnionPay's ``acp_test_sign.pfx``, password ``000000``)."""
    encryption = serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
    return pkcs12.serialize_key_and_certificates(name, key, cert, chain, encryption)


def _write(path: Path, data: bytes, mode: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.chmod(path, mode)


def write_ca(ca: CertificateAuthority, directory: Path) -> CaFiles:
    """Write ``ca`` as ``root.crt``, ``middle.crt``, ``sign.crt`` and ``sign.key`` (0600) into ``directory``."""
    files = CaFiles.in_directory(Path(directory))
    files.directory.mkdir(parents=True, exist_ok=True)
    _write(files.root_cert, cert_pem(ca.root_cert), 0o644)
    _write(files.middle_cert, cert_pem(ca.middle_cert), 0o644)
    _write(files.sign_cert, cert_pem(ca.sign_cert), 0o644)
    _write(files.sign_key, key_pem(ca.sign_key), 0o600)
    return files


def generate_ca(
    directory: Path,
    *,
    owner_cn: str = DEFAULT_OWNER_CN,
    days: int = DEFAULT_DAYS,
    key_size: int = DEFAULT_KEY_SIZE,
    overwrite: bool = False,
) -> CaFiles:
    """Create a CA in ``directory`` (root.crt, middle.crt, sign.crt, sign.key) unless all four files already exist
    (then they are kept, so the portal's trust survives restarts) or ``overwrite`` is set.

    The root and middle private keys are not written: a sandbox only needs to sign with ``sign.key``.
    """
    files = CaFiles.in_directory(Path(directory))
    if files.exists() and not overwrite:
        return files
    return write_ca(build_ca(owner_cn=owner_cn, days=days, key_size=key_size), files.directory)


def load_ca_files(directory: Path) -> CaFiles:
    """The :class:`CaFiles` of ``directory``; raises FileNotFoundError when one of the four files is missing."""
    files = CaFiles.in_directory(Path(directory))
    for path in (files.root_cert, files.middle_cert, files.sign_cert, files.sign_key):
        if not path.is_file():
            raise FileNotFoundError(path)
    return files
