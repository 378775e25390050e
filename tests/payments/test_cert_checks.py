"""Checks of the ACP keys and certificates (security check E2): the system checks, ``manage.py acp_certificates``
and the daily expiry job. Every certificate is generated here with ``cryptography``."""

from __future__ import annotations

import io
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import time_machine
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID
from django.conf import settings as django_settings
from django.core.checks import Tags, run_checks
from django.core.management import call_command
from django.core.management.base import CommandError

from payments.checks import CERTIFICATES_TAG
from payments.tasks import warn_expiring_certificates
from portal.audit.models import AuditEvent

NOW = datetime.now(UTC)


@pytest.fixture(scope="module")
def keys() -> dict[str, rsa.RSAPrivateKey]:
    """RSA keys, made once for the module (2048-bit keys take a while)."""
    return {
        "root": rsa.generate_private_key(public_exponent=65537, key_size=2048),
        "sign": rsa.generate_private_key(public_exponent=65537, key_size=2048),
        "other": rsa.generate_private_key(public_exponent=65537, key_size=2048),
        "weak": rsa.generate_private_key(public_exponent=65537, key_size=1024),
    }


def make_cert(
    key: rsa.RSAPrivateKey,
    *,
    cn: str = "041@Z2026@000000000000001:SIGN@00000001",
    issuer_key: rsa.RSAPrivateKey | None = None,
    not_before: datetime | None = None,
    not_after: datetime | None = None,
    sha1: bool = False,
    ca: bool = False,
    key_usage: x509.KeyUsage | None | str = "default",
    serial: int | None = None,
) -> x509.Certificate:
    """A certificate for ``key``, self-signed unless ``issuer_key``; valid from yesterday for a year by default."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(serial or x509.random_serial_number())
        .not_valid_before(not_before or min(NOW, not_after or NOW) - timedelta(days=1))
        .not_valid_after(not_after or NOW + timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if key_usage == "default":
        key_usage = (
            x509.KeyUsage(False, False, False, False, False, True, True, False, False)
            if ca
            else x509.KeyUsage(True, True, False, False, False, False, False, False, False)
        )
    if key_usage is not None:
        builder = builder.add_extension(key_usage, critical=True)
    cert = builder.sign(issuer_key or key, hashes.SHA256())
    return with_sha1_signature(cert, issuer_key or key) if sha1 else cert


_SHA256_WITH_RSA = bytes.fromhex("06092a864886f70d01010b")  # OID 1.2.840.113549.1.1.11, DER
_SHA1_WITH_RSA = bytes.fromhex("06092a864886f70d010105")  # OID 1.2.840.113549.1.1.5


def with_sha1_signature(cert: x509.Certificate, issuer_key: rsa.RSAPrivateKey) -> x509.Certificate:
    """``cert`` re-signed with SHA-1, as old CA certificates are (this OpenSSL refuses to issue one): the algorithm
    identifier is swapped in the TBS part and the outer structure, then the TBS part is signed again."""
    der = cert.public_bytes(serialization.Encoding.DER)
    assert der.count(_SHA256_WITH_RSA) == 2
    der = der.replace(_SHA256_WITH_RSA, _SHA1_WITH_RSA)
    tbs = x509.load_der_x509_certificate(der).tbs_certificate_bytes
    signature = issuer_key.sign(tbs, padding.PKCS1v15(), hashes.SHA1())
    assert len(signature) == len(cert.signature)
    sha1_cert = x509.load_der_x509_certificate(der.replace(cert.signature, signature))
    issuer_key.public_key().verify(sha1_cert.signature, tbs, padding.PKCS1v15(), hashes.SHA1())
    return sha1_cert


def pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def key_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


class Material:
    """Writes certificates into a directory and points the ACP settings at them (sandbox off)."""

    def __init__(self, settings, directory: Path, keys):
        self.settings, self.dir, self.keys = settings, directory, keys
        settings.SANDBOX_ENABLED = False
        settings.SANDBOX_DIR = str(directory / "sandbox")
        settings.ACP_CERT_EXPIRY_WARNING_DAYS = 30
        settings.ACP_SIGN_PKCS12_PATH = ""
        settings.ACP_SIGN_PKCS12_PASSWORD = ""
        settings.ACP_VERIFY_CERT_PATHS = []
        self.sign_cert = make_cert(keys["sign"])
        self.signing(keys["sign"], self.sign_cert)
        self.root_cert = make_cert(keys["root"], cn="Test Root", ca=True)
        self.trusted("ACP_ROOT_CERT_PATHS", self.root_cert)
        self.middle_cert = make_cert(keys["other"], cn="Test Middle", issuer_key=keys["root"], ca=True)
        self.trusted("ACP_MIDDLE_CERT_PATHS", self.middle_cert)

    def write(self, name: str, data: bytes) -> str:
        path = self.dir / name
        path.write_bytes(data)
        return str(path)

    def signing(self, key: rsa.RSAPrivateKey, cert: x509.Certificate) -> None:
        self.settings.ACP_SIGN_KEY_PATH = self.write("sign.key", key_pem(key))
        self.settings.ACP_SIGN_CERT_PATH = self.write("sign.crt", pem(cert))

    def trusted(self, setting: str, *certs: x509.Certificate) -> None:
        setattr(self.settings, setting, [self.write(f"{setting}.crt", b"".join(pem(c) for c in certs))])


@pytest.fixture
def material(settings, tmp_path, keys) -> Material:
    return Material(settings, tmp_path, keys)


def deploy_ids() -> list[str]:
    """Ids of the certificate checks as ``check --deploy`` runs them."""
    return sorted(m.id for m in run_checks(tags=[CERTIFICATES_TAG], include_deployment_checks=True))


def deploy_messages() -> list:
    return list(run_checks(tags=[CERTIFICATES_TAG], include_deployment_checks=True))


# --- system checks ------------------------------------------------------------------------------------------------


def test_good_material_passes(material):
    assert deploy_ids() == []


def test_expired_signing_certificate_is_an_error(material, keys):
    material.signing(keys["sign"], make_cert(keys["sign"], not_after=NOW - timedelta(days=2)))
    assert deploy_ids() == ["payments.E014"]


def test_not_yet_valid_certificate_is_an_error(material, keys):
    start = NOW + timedelta(days=3)
    material.trusted("ACP_MIDDLE_CERT_PATHS", make_cert(keys["other"], not_before=start, ca=True))
    assert deploy_ids() == ["payments.E015"]


def test_certificate_expiring_in_ten_days_is_a_warning(material, keys):
    material.signing(keys["sign"], make_cert(keys["sign"], not_after=NOW + timedelta(days=10)))
    messages = deploy_messages()
    assert [m.id for m in messages] == ["payments.W016"]
    assert messages[0].level == 30  # WARNING: does not fail a plain check --deploy
    assert "ACP_SIGN_CERT_PATH" in messages[0].msg


def test_expiry_warning_window_is_configurable(material, keys):
    material.signing(keys["sign"], make_cert(keys["sign"], not_after=NOW + timedelta(days=10)))
    material.settings.ACP_CERT_EXPIRY_WARNING_DAYS = 5
    assert deploy_ids() == []
    material.settings.ACP_CERT_EXPIRY_WARNING_DAYS = 11
    assert deploy_ids() == ["payments.W016"]


def test_1024_bit_signing_key_is_an_error(material, keys):
    material.signing(keys["weak"], make_cert(keys["weak"]))
    messages = deploy_messages()
    assert [m.id for m in messages] == ["payments.E011"]
    assert "RSA 1024" in messages[0].msg


def test_1024_bit_root_is_an_error(material, keys):
    material.trusted("ACP_ROOT_CERT_PATHS", make_cert(keys["weak"], cn="Weak Root", ca=True))
    assert deploy_ids() == ["payments.E011"]


def test_mismatched_key_is_an_error(material, keys):
    material.signing(keys["other"], make_cert(keys["sign"]))
    assert deploy_ids() == ["payments.E017"]


def test_sha1_root_is_a_warning(material, keys):
    root = make_cert(keys["root"], cn="Old Root", ca=True, sha1=True)
    material.trusted("ACP_ROOT_CERT_PATHS", root)
    messages = deploy_messages()
    assert [(m.id, m.level) for m in messages] == [("payments.W012", 30)]
    assert "SHA1" in messages[0].msg


def test_sha1_middle_in_a_bundle_is_found(material, keys):
    old = make_cert(keys["other"], cn="Old Middle", issuer_key=keys["root"], ca=True, sha1=True)
    material.trusted("ACP_MIDDLE_CERT_PATHS", material.middle_cert, old)
    assert deploy_ids() == ["payments.W012"]


def test_signing_certificate_without_digital_signature_is_an_error(material, keys):
    usage = x509.KeyUsage(False, False, True, False, False, False, False, False, False)  # keyEncipherment only
    material.signing(keys["sign"], make_cert(keys["sign"], key_usage=usage))
    assert deploy_ids() == ["payments.E013"]


def test_signing_certificate_without_key_usage_extension_passes(material, keys):
    material.signing(keys["sign"], make_cert(keys["sign"], key_usage=None))
    assert deploy_ids() == []


def test_missing_file_names_the_setting(material):
    material.settings.ACP_ROOT_CERT_PATHS = [str(material.dir / "nowhere.cer")]
    messages = deploy_messages()
    assert [m.id for m in messages] == ["payments.E010"]
    assert messages[0].msg.startswith("ACP_ROOT_CERT_PATHS (")
    assert "does not exist" in messages[0].msg


def test_garbage_certificate_file_is_an_error(material):
    material.settings.ACP_MIDDLE_CERT_PATHS = [material.write("junk.cer", b"not a certificate")]
    assert deploy_ids() == ["payments.E010"]


def test_key_without_certificate_is_an_error(material):
    material.settings.ACP_SIGN_CERT_PATH = ""
    messages = deploy_messages()
    assert [m.id for m in messages] == ["payments.E010"]
    assert "ACP_SIGN_CERT_PATH is not set" in messages[0].msg


def test_pkcs12_signing_certificate_passes(material, keys):
    data = pkcs12.serialize_key_and_certificates(
        b"sign", keys["sign"], material.sign_cert, None, serialization.BestAvailableEncryption(b"135790")
    )
    material.settings.ACP_SIGN_PKCS12_PATH = material.write("sign.pfx", data)
    material.settings.ACP_SIGN_PKCS12_PASSWORD = "135790"
    material.settings.ACP_SIGN_KEY_PATH = material.settings.ACP_SIGN_CERT_PATH = ""
    assert deploy_ids() == []


def test_pkcs12_with_expired_certificate_is_an_error(material, keys):
    cert = make_cert(keys["sign"], not_after=NOW - timedelta(days=1))
    data = pkcs12.serialize_key_and_certificates(b"sign", keys["sign"], cert, None, serialization.NoEncryption())
    material.settings.ACP_SIGN_PKCS12_PATH = material.write("sign.pfx", data)
    assert deploy_ids() == ["payments.E014"]


def test_wrong_pkcs12_password_names_the_setting_not_the_password(material, keys):
    data = pkcs12.serialize_key_and_certificates(
        b"sign", keys["sign"], material.sign_cert, None, serialization.BestAvailableEncryption(b"135790")
    )
    material.settings.ACP_SIGN_PKCS12_PATH = material.write("sign.pfx", data)
    material.settings.ACP_SIGN_PKCS12_PASSWORD = "864213"
    messages = deploy_messages()
    assert [m.id for m in messages] == ["payments.E010"]
    text = messages[0].msg + messages[0].hint
    assert "ACP_SIGN_PKCS12_PASSWORD" in text
    assert "864213" not in text and "135790" not in text


def test_unconfigured_gateway_is_skipped(material):
    s = material.settings
    s.ACP_SIGN_KEY_PATH = s.ACP_SIGN_CERT_PATH = ""
    s.ACP_ROOT_CERT_PATHS = s.ACP_MIDDLE_CERT_PATHS = s.ACP_VERIFY_CERT_PATHS = []
    assert deploy_ids() == []


def test_configured_errors_only_under_deploy(material, keys):
    # given an expired configured certificate
    material.signing(keys["sign"], make_cert(keys["sign"], not_after=NOW - timedelta(days=2)))
    # then the plain check leaves it to check --deploy
    assert [m.id for m in run_checks(tags=[CERTIFICATES_TAG])] == []
    assert deploy_ids() == ["payments.E014"]
    # and check --deploy --tag security includes it too
    security = run_checks(tags=[Tags.security], include_deployment_checks=True)
    assert [m.id for m in security if m.id.startswith("payments.")] == ["payments.E014"]


@pytest.fixture
def sandbox(material) -> Path:
    """The embedded default: the sandbox on and every path inside SANDBOX_DIR."""
    directory = material.dir / "sandbox"
    directory.mkdir()
    s = material.settings
    s.SANDBOX_ENABLED = True
    s.ACP_SIGN_KEY_PATH = str(directory / "portal_sign.key")
    s.ACP_SIGN_CERT_PATH = str(directory / "portal_sign.crt")
    s.ACP_ROOT_CERT_PATHS = [str(directory / "root.crt")]
    s.ACP_MIDDLE_CERT_PATHS = [str(directory / "middle.crt")]
    s.ACP_VERIFY_CERT_PATHS = [str(directory / "sign.crt")]
    return directory


def test_sandbox_files_not_generated_yet_are_skipped(sandbox):
    assert deploy_ids() == []


def test_sandbox_problems_are_warnings_in_the_plain_check(sandbox, keys):
    # given the sandbox's files exist, with an expired root and a weak signing key
    (sandbox / "root.crt").write_bytes(pem(make_cert(keys["root"], ca=True, not_after=NOW - timedelta(days=1))))
    (sandbox / "portal_sign.key").write_bytes(key_pem(keys["weak"]))
    (sandbox / "portal_sign.crt").write_bytes(pem(make_cert(keys["weak"])))
    # then the plain check reports them, as warnings only, and check --deploy adds nothing
    plain = run_checks(tags=[CERTIFICATES_TAG])
    assert sorted((m.id, m.level) for m in plain) == [("payments.W011", 30), ("payments.W014", 30)]
    assert deploy_ids() == ["payments.W011", "payments.W014"]


# --- manage.py acp_certificates -----------------------------------------------------------------------------------


def run_command() -> tuple[str, int]:
    out = io.StringIO()
    try:
        call_command("acp_certificates", stdout=out)
    except CommandError as exc:
        return out.getvalue(), exc.returncode
    return out.getvalue(), 0


def test_command_prints_the_inventory(material):
    output, code = run_command()
    assert code == 0
    lines = output.splitlines()
    assert lines[0].split()[:2] == ["setting", "subject"]
    sign_row = next(line for line in lines if line.startswith("ACP_SIGN_CERT_PATH "))
    cert = material.sign_cert
    assert str(cert.serial_number) in sign_row  # certId: the decimal serial
    beijing = cert.not_valid_after_utc + timedelta(hours=8)
    assert beijing.strftime("%Y-%m-%d %H:%M") in sign_row
    assert " 364 " in sign_row  # days left
    assert "RSA 2048" in sign_row
    assert cert.fingerprint(hashes.SHA256()).hex(":").upper() in sign_row
    assert any(line.startswith("ACP_ROOT_CERT_PATHS ") and "CN=Test Root" in line for line in lines)
    assert any(line.startswith("ACP_MIDDLE_CERT_PATHS ") for line in lines)
    assert lines[-1] == "3 item(s), 0 error(s), 0 warning(s)."
    assert "PRIVATE KEY" not in output


def test_command_exits_1_on_an_error(material, keys):
    material.signing(keys["sign"], make_cert(keys["sign"], not_after=NOW - timedelta(days=2)))
    output, code = run_command()
    assert code == 1
    assert "payments.E014" in output
    assert output.splitlines()[-1] == "3 item(s), 1 error(s), 0 warning(s)."


def test_command_exits_0_on_warnings_only(material, keys):
    material.signing(keys["sign"], make_cert(keys["sign"], not_after=NOW + timedelta(days=10)))
    output, code = run_command()
    assert code == 0
    assert "WARNING  payments.W016" in output


def test_command_lists_an_unreadable_file(material):
    material.settings.ACP_ROOT_CERT_PATHS = [str(material.dir / "nowhere.cer")]
    output, code = run_command()
    assert code == 1
    assert "unreadable: " in output and "payments.E010" in output


# --- the daily job ------------------------------------------------------------------------------------------------


def expiring_events() -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action="acp.certificate_expiring").order_by("sequence"))


@pytest.mark.django_db
def test_job_audits_each_expiring_certificate_once_a_day(material, keys, caplog):
    # given a signing certificate expiring in 10 days and a root expiring in 20; the middle has a year
    soon = make_cert(keys["sign"], not_after=NOW + timedelta(days=10))
    material.signing(keys["sign"], soon)
    root = make_cert(keys["root"], cn="Test Root", ca=True, not_after=NOW + timedelta(days=20))
    material.trusted("ACP_ROOT_CERT_PATHS", root)
    # when the job runs twice the same day (the clock held at NOW: a run crossing Beijing midnight, 16:00 UTC,
    # would otherwise fall on the day the second half of the test travels to)
    with (
        time_machine.travel(NOW, tick=False),
        caplog.at_level(logging.WARNING, logger="payments.gateway.certificates"),
    ):
        assert warn_expiring_certificates() == 2
        assert warn_expiring_certificates() == 0
    # then one event and one log line per certificate
    events = expiring_events()
    assert [e.object_id for e in events] == [
        soon.fingerprint(hashes.SHA256()).hex(),
        root.fingerprint(hashes.SHA256()).hex(),
    ]
    first = events[0]
    assert (first.actor_id, first.actor_repr, first.organisation_id) == (None, "system", None)
    assert first.object_type == "acp.certificate"
    assert first.details["setting"] == "ACP_SIGN_CERT_PATH"
    assert first.details["cert_id"] == str(soon.serial_number)
    assert first.details["days_left"] == 9
    assert first.details["expired"] is False
    assert len([r for r in caplog.records if r.getMessage().startswith("ACP certificate ")]) == 2
    # when it runs again the next day: one more event each
    with time_machine.travel(NOW + timedelta(days=1), tick=False):
        assert warn_expiring_certificates() == 2
    assert len(expiring_events()) == 4


@pytest.mark.django_db
def test_job_leaves_certificates_outside_the_window_alone(material):
    assert warn_expiring_certificates() == 0
    assert expiring_events() == []


@pytest.mark.django_db
def test_job_reports_an_expired_certificate(material, keys):
    material.trusted("ACP_MIDDLE_CERT_PATHS", make_cert(keys["other"], ca=True, not_after=NOW - timedelta(days=3)))
    assert warn_expiring_certificates() == 1
    (event,) = expiring_events()
    assert event.details["expired"] is True
    assert event.details["setting"] == "ACP_MIDDLE_CERT_PATHS"


def test_job_is_scheduled_daily():
    entry = django_settings.CELERY_BEAT_SCHEDULE["payments-certificate-expiry"]
    assert entry["task"] == warn_expiring_certificates.name == "payments.warn_expiring_certificates"
    assert entry["schedule"].hour == {1} and entry["schedule"].minute == {0}
