"""Signing and verification of ACP messages (formats.md §3).

* ``signMethod=01`` (RSA certificate), version ``5.0.0``: ``hex = lowercase_hex(SHA-1(signing string))``, then
  SHA1withRSA (PKCS#1 v1.5) over the ASCII bytes of ``hex``; version ``5.1.0``: the same with SHA-256. ``certId`` is
  the decimal serial number of the signing certificate and is signed too. Output Base64.
* ``signMethod=11`` (shared secret): ``hex(SHA-256(signing string + "&" + hex(SHA-256(secureKey))))``.
* Verification: 5.0.0 looks the certificate up by ``certId`` among configured verification certificates; 5.1.0 takes
  ``signPubKeyCert`` from the message and accepts it only if it is inside its validity period, chains to a configured
  middle and root certificate and its subject CN names an accepted owner (``CN.split("@")[2]``).

Pure Python on ``cryptography``; no Django settings are read here.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from .codec import filter_blank, normalise_encoding, signing_string
from .errors import (
    ACPConfigurationError,
    ACPFormatError,
    ACPRequestError,
    CertificateExpiredError,
    CertificateNotYetValidError,
    CertificateOwnerError,
    CertificateParseError,
    MissingIntermediateError,
    MissingSignatureError,
    SignatureError,
    SignatureMismatchError,
    UnknownCertIdError,
    UnsupportedSignMethodError,
    UntrustedCertificateError,
)

VERSION_5_0_0 = "5.0.0"
VERSION_5_1_0 = "5.1.0"
VERSIONS = (VERSION_5_0_0, VERSION_5_1_0)
SIGN_METHOD_RSA = "01"
SIGN_METHOD_SHA256 = "11"
SIGN_METHOD_SM3 = "12"  # not supported (no SM3 in cryptography); refused explicitly

#: Owner element (``CN.split("@")[2]``) of UnionPay's production signing certificates.
UNIONPAY_OWNER = "中国银联股份有限公司"
#: Owner element of the test environment's signing certificate (accepted only when configured, ``ifValidateCNName``).
UNIONPAY_TEST_OWNER = "00040000:SIGN"


def digest_hex(sign_string: str, version: str, encoding: str = "UTF-8") -> str:
    """Lowercase hex SHA-1 (5.0.0) or SHA-256 (5.1.0) of the signing string in ``encoding``: what RSA signs."""
    algorithm = _hashlib_name(version)
    try:
        data = sign_string.encode(normalise_encoding(encoding))
    except UnicodeEncodeError as exc:
        raise ACPFormatError(f"the message cannot be written in {encoding}") from exc
    return hashlib.new(algorithm, data).hexdigest()


def secret_signature(params: Mapping[str, str], secure_key: str, encoding: str | None = None) -> str:
    """``signMethod=11`` signature: ``hex(SHA256(signString + "&" + hex(SHA256(secureKey))))`` in lowercase hex."""
    charset = normalise_encoding(encoding if encoding is not None else params.get("encoding"))
    try:
        key_hex = hashlib.sha256(secure_key.encode(charset)).hexdigest()
        return hashlib.sha256((signing_string(params) + "&" + key_hex).encode(charset)).hexdigest()
    except UnicodeEncodeError as exc:
        raise ACPFormatError(f"the message cannot be written in {charset}") from exc


def _hashlib_name(version: str) -> str:
    if version == VERSION_5_0_0:
        return "sha1"
    if version == VERSION_5_1_0:
        return "sha256"
    raise UnsupportedSignMethodError(f"unsupported version {version!r} for signMethod 01")


def _rsa_hash(version: str) -> hashes.HashAlgorithm:
    return hashes.SHA1() if _hashlib_name(version) == "sha1" else hashes.SHA256()  # SHA-1 is what 5.0.0 mandates


# --- key and certificate loading ----------------------------------------------------------------------------------


def _password_bytes(password: str | bytes | None) -> bytes | None:
    if password is None or password == "" or password == b"":
        return None
    return password.encode("utf-8") if isinstance(password, str) else password


def load_certificates(data: bytes | str) -> list[x509.Certificate]:
    """Load every certificate of a PEM bundle, or one DER certificate (UnionPay ships ``.cer`` in both)."""
    raw = data.encode("ascii", errors="replace") if isinstance(data, str) else data
    try:
        if b"-----BEGIN" in raw:
            return x509.load_pem_x509_certificates(raw)
        return [x509.load_der_x509_certificate(raw)]
    except ValueError as exc:
        raise ACPConfigurationError("not a PEM or DER X.509 certificate") from exc


def load_certificate_files(paths: Iterable[str | Path]) -> list[x509.Certificate]:
    """Load the certificates in ``paths`` (each PEM, PEM bundle or DER)."""
    certs: list[x509.Certificate] = []
    for path in paths:
        certs.extend(load_certificates(Path(path).read_bytes()))
    return certs


def certificate_pem(cert: x509.Certificate) -> str:
    """PEM text of ``cert`` (the form carried in ``signPubKeyCert``)."""
    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


def cert_id_of(cert: x509.Certificate) -> str:
    """``certId``: the decimal serial number of ``cert``."""
    return str(cert.serial_number)


def owner_of(cert: x509.Certificate) -> str | None:
    """Element [2] of the subject CN split on ``@`` (the owner rule), or None when the CN has no such element."""
    cns = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if len(cns) != 1:
        return None
    value = cns[0].value
    parts = (value if isinstance(value, str) else value.decode("utf-8", "replace")).split("@")
    return parts[2] if len(parts) > 2 else None


# --- signing ------------------------------------------------------------------------------------------------------


class Signer:
    """Signs ACP messages with ``signMethod=01`` using an RSA key and its certificate (the merchant's, or the
    sandbox's when it plays the network)."""

    sign_method = SIGN_METHOD_RSA

    def __init__(self, private_key: rsa.RSAPrivateKey, certificate: x509.Certificate):
        if not isinstance(private_key, rsa.RSAPrivateKey):
            raise ACPConfigurationError("signMethod 01 needs an RSA private key")
        if certificate.public_key().public_numbers() != private_key.public_key().public_numbers():
            raise ACPConfigurationError("the certificate does not belong to the private key")
        self._key = private_key
        self._cert = certificate
        self._pem = certificate_pem(certificate)

    @classmethod
    def from_pkcs12(cls, data: bytes, password: str | bytes | None) -> Signer:
        """Load a ``.pfx``/``.p12`` (UnionPay's merchant signing certificate, e.g. ``acp_test_sign.pfx``)."""
        try:
            key, cert, extra = pkcs12.load_key_and_certificates(data, _password_bytes(password))
        except (ValueError, UnsupportedAlgorithm) as exc:
            raise ACPConfigurationError("cannot open the PKCS#12 file (wrong password or format)") from exc
        if key is None:
            raise ACPConfigurationError("the PKCS#12 file holds no private key")
        candidates = ([cert] if cert is not None else []) + list(extra or [])
        for candidate in candidates:
            if isinstance(key, rsa.RSAPrivateKey) and (
                candidate.public_key().public_numbers() == key.public_key().public_numbers()
            ):
                return cls(key, candidate)
        raise ACPConfigurationError("the PKCS#12 file holds no certificate for its RSA key")

    @classmethod
    def from_pem(cls, key_pem: bytes, cert_pem: bytes, password: str | bytes | None = None) -> Signer:
        """Load a PEM private key (PKCS#1 or PKCS#8, optionally encrypted) and its PEM/DER certificate."""
        try:
            key = serialization.load_pem_private_key(key_pem, _password_bytes(password))
        except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
            raise ACPConfigurationError("cannot load the PEM private key (wrong password or format)") from exc
        certs = load_certificates(cert_pem)
        return cls(key, certs[0])  # type: ignore[arg-type]

    @classmethod
    def from_files(
        cls,
        *,
        pkcs12_path: str | Path | None = None,
        key_path: str | Path | None = None,
        cert_path: str | Path | None = None,
        password: str | bytes | None = None,
    ) -> Signer:
        """Load from a PKCS#12 file, or from a PEM key file plus a certificate file."""
        if pkcs12_path:
            return cls.from_pkcs12(Path(pkcs12_path).read_bytes(), password)
        if key_path and cert_path:
            return cls.from_pem(Path(key_path).read_bytes(), Path(cert_path).read_bytes(), password)
        raise ACPConfigurationError("give pkcs12_path, or key_path and cert_path")

    @property
    def certificate(self) -> x509.Certificate:
        return self._cert

    @property
    def certificate_pem(self) -> str:
        return self._pem

    @property
    def cert_id(self) -> str:
        """Decimal serial number of the signing certificate."""
        return cert_id_of(self._cert)

    def sign(self, params: Mapping[str, str | None], *, include_cert: bool = False) -> dict[str, str]:
        """Return a signed copy of ``params``.

        Blank values are dropped and others trimmed (``AcpService.sign`` → ``filterBlank``); ``signMethod`` defaults to
        ``01``; ``certId`` is set; with ``include_cert`` (answers and notifications in 5.1.0, as the network sends them)
        ``signPubKeyCert`` is set too. ``version`` must be 5.0.0 or 5.1.0.
        """
        message = filter_blank(params)
        message.pop("signature", None)
        message.setdefault("signMethod", SIGN_METHOD_RSA)
        if message["signMethod"] != SIGN_METHOD_RSA:
            raise ACPRequestError(f"this signer signs signMethod 01, not {message['signMethod']!r}")
        version = message.get("version", "")
        if version not in VERSIONS:
            raise ACPRequestError(f"version must be 5.0.0 or 5.1.0, not {version!r}")
        message["certId"] = self.cert_id
        if include_cert:
            message["signPubKeyCert"] = self._pem
        hex_digest = digest_hex(signing_string(message), version, message.get("encoding") or "UTF-8")
        signature = self._key.sign(hex_digest.encode("ascii"), padding.PKCS1v15(), _rsa_hash(version))
        message["signature"] = base64.b64encode(signature).decode("ascii")
        return message


class SecretKeySigner:
    """Signs ACP messages with ``signMethod=11`` (SHA-256 with the shared secret ``secureKey``)."""

    sign_method = SIGN_METHOD_SHA256

    def __init__(self, secure_key: str):
        if not secure_key:
            raise ACPConfigurationError("the shared secret is empty")
        self._secure_key = secure_key

    def sign(self, params: Mapping[str, str | None], *, include_cert: bool = False) -> dict[str, str]:
        """Return a signed copy of ``params`` (blank values dropped, ``signMethod=11``; no ``certId``)."""
        message = filter_blank(params)
        message.pop("signature", None)
        message["signMethod"] = SIGN_METHOD_SHA256
        message["signature"] = secret_signature(message, self._secure_key)
        return message


# --- verification -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Verification:
    """What a successful verification relied on."""

    sign_method: str
    version: str
    certificate: x509.Certificate | None
    cert_id: str | None


def _utcnow() -> datetime:
    return datetime.now(UTC)


class Verifier:
    """Verifies signatures of ACP messages (answers and notifications from the network, or, in the sandbox,
    requests from merchants).

    ``verify_certs``: certificates looked up by ``certId`` (5.0.0, and 5.1.0 messages without ``signPubKeyCert`` only
    when ``accept_cert_id_for_510``). They are trusted as configured: their validity period is not checked, as in the
    official SDK. ``root_certs`` / ``middle_certs``: the trust anchors for ``signPubKeyCert`` (5.1.0).
    ``allowed_owners``: accepted values of ``CN.split("@")[2]``; add :data:`UNIONPAY_TEST_OWNER` for the test
    environment. ``secure_key``: enables ``signMethod=11``. ``clock`` returns the aware "now" for validity checks.
    """

    def __init__(
        self,
        *,
        verify_certs: Iterable[x509.Certificate] = (),
        root_certs: Iterable[x509.Certificate] = (),
        middle_certs: Iterable[x509.Certificate] = (),
        allowed_owners: Iterable[str] = (UNIONPAY_OWNER,),
        secure_key: str | None = None,
        accept_cert_id_for_510: bool = False,
        clock: Callable[[], datetime] = _utcnow,
        cache_size: int = 64,
    ):
        self._by_cert_id = {cert_id_of(cert): cert for cert in verify_certs}
        self._roots = list(root_certs)
        self._middles = list(middle_certs)
        self._owners = frozenset(allowed_owners)
        self._secure_key = secure_key or None
        self._accept_cert_id_for_510 = accept_cert_id_for_510
        self._clock = clock
        self._cache: OrderedDict[str, tuple[x509.Certificate, ...]] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()

    def verify(self, params: Mapping[str, str], *, at: datetime | None = None) -> Verification:
        """Verify ``params`` (a decoded message including ``signature``); raise a SignatureError subclass if not valid.

        ``at`` is the time for certificate validity (default: the clock).
        """
        signature = params.get("signature") or ""
        if not signature.strip():
            raise MissingSignatureError("the message has no signature")
        sign_method = params.get("signMethod", "")
        version = params.get("version", "")
        encoding = params.get("encoding") or "UTF-8"
        if sign_method == SIGN_METHOD_SHA256:
            return self._verify_secret(params, signature, version, encoding)
        if sign_method != SIGN_METHOD_RSA:
            raise UnsupportedSignMethodError(f"unsupported signMethod {sign_method[:8]!r}")
        if version == VERSION_5_0_0:
            cert = self._lookup_cert_id(params)
        elif version == VERSION_5_1_0:
            pem = params.get("signPubKeyCert") or ""
            if pem.strip():
                cert = self.validate_sign_pub_key_cert(pem, at=at)
            elif self._accept_cert_id_for_510:
                cert = self._lookup_cert_id(params)
            else:
                raise MissingSignatureError("a 5.1.0 message must carry signPubKeyCert")
        else:
            raise UnsupportedSignMethodError(f"unsupported version {version[:8]!r}")
        try:
            raw_signature = base64.b64decode(signature.strip().replace(" ", "+"), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise SignatureMismatchError("the signature is not Base64") from exc
        try:
            hex_digest = digest_hex(signing_string(params), version, encoding)
        except ACPFormatError as exc:
            raise SignatureMismatchError(f"the message cannot be hashed: {exc}") from exc
        public_key = cert.public_key()
        if not isinstance(public_key, rsa.RSAPublicKey):
            raise SignatureMismatchError("the signing certificate has no RSA key")
        try:
            public_key.verify(raw_signature, hex_digest.encode("ascii"), padding.PKCS1v15(), _rsa_hash(version))
        except InvalidSignature as exc:
            raise SignatureMismatchError("the signature does not match the message") from exc
        return Verification(SIGN_METHOD_RSA, version, cert, cert_id_of(cert))

    def is_valid(self, params: Mapping[str, str], *, at: datetime | None = None) -> bool:
        """True when :meth:`verify` accepts ``params``."""
        try:
            self.verify(params, at=at)
        except SignatureError:
            return False
        return True

    def _verify_secret(self, params: Mapping[str, str], signature: str, version: str, encoding: str) -> Verification:
        if self._secure_key is None:
            raise UnsupportedSignMethodError("signMethod 11 is not configured (no shared secret)")
        try:
            expected = secret_signature(params, self._secure_key, encoding)
        except ACPFormatError as exc:
            raise SignatureMismatchError(f"the message cannot be hashed: {exc}") from exc
        if not hmac.compare_digest(expected.encode("ascii"), signature.strip().encode("utf-8", "replace")):
            raise SignatureMismatchError("the signature does not match the message")
        return Verification(SIGN_METHOD_SHA256, version, None, None)

    def _lookup_cert_id(self, params: Mapping[str, str]) -> x509.Certificate:
        cert_id = (params.get("certId") or "").strip()
        if not cert_id:
            raise MissingSignatureError("the message has no certId")
        cert = self._by_cert_id.get(cert_id)
        if cert is None:
            raise UnknownCertIdError(f"no verification certificate with certId {cert_id[:40]}")
        return cert

    # -- signPubKeyCert ------------------------------------------------------------------------------------------

    def validate_sign_pub_key_cert(self, pem: str, *, at: datetime | None = None) -> x509.Certificate:
        """Accept the ``signPubKeyCert`` of a 5.1.0 message, or raise a CertificateError subclass.

        Checks, in this order: parse, validity period of each certificate of the chain, leaf issued by a configured
        middle certificate (a CA), middle issued by a configured root, owner rule. Accepted chains are cached by PEM
        text (validity is re-checked on every call).
        """
        when = at or self._clock()
        with self._lock:
            chain = self._cache.get(pem)
            if chain is not None:
                self._cache.move_to_end(pem)
        if chain is None:
            chain = self._build_chain(pem, when)
            with self._lock:
                self._cache[pem] = chain
                while len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
        else:
            for cert in chain:
                _check_validity(cert, when)
        return chain[0]

    def _build_chain(self, pem: str, when: datetime) -> tuple[x509.Certificate, ...]:
        try:
            leaf = x509.load_pem_x509_certificate(pem.strip().encode("ascii"))
        except (ValueError, UnicodeEncodeError) as exc:
            raise CertificateParseError("signPubKeyCert is not a PEM certificate") from exc
        _check_validity(leaf, when)
        middle = _find_issuer(leaf, self._middles)
        if middle is None:
            if not any(candidate.subject == leaf.issuer for candidate in self._middles):
                raise MissingIntermediateError("no configured middle certificate issued signPubKeyCert")
            raise UntrustedCertificateError("signPubKeyCert is not signed by the configured middle certificate")
        if not _is_ca(middle):
            raise UntrustedCertificateError("the middle certificate is not a CA")
        _check_validity(middle, when)
        root = _find_issuer(middle, self._roots)
        if root is None:
            raise UntrustedCertificateError("the middle certificate does not chain to a configured root")
        _check_validity(root, when)
        owner = owner_of(leaf)
        if owner is None or owner not in self._owners:
            raise CertificateOwnerError("signPubKeyCert does not belong to an accepted owner")
        return (leaf, middle, root)


def _find_issuer(cert: x509.Certificate, candidates: Iterable[x509.Certificate]) -> x509.Certificate | None:
    for candidate in candidates:
        if candidate.subject != cert.issuer:
            continue
        try:
            cert.verify_directly_issued_by(candidate)
        except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
            continue
        return candidate
    return None


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        return True  # old CFCA intermediates may lack the extension; the configured middle is trusted as such
    return constraints.ca


def _check_validity(cert: x509.Certificate, when: datetime) -> None:
    if when.tzinfo is None:
        raise ValueError("validity is checked against an aware datetime")
    if when < cert.not_valid_before_utc:
        raise CertificateNotYetValidError(
            f"certificate {cert.serial_number} is not valid before {cert.not_valid_before_utc.isoformat()}"
        )
    if when > cert.not_valid_after_utc:
        raise CertificateExpiredError(
            f"certificate {cert.serial_number} expired at {cert.not_valid_after_utc.isoformat()}"
        )
