"""``deploy/production.env.example`` is complete and passes ``check --deploy`` with no issue (issue 2, section 1)."""

import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

ROOT = Path(settings.BASE_DIR)
EXAMPLE = ROOT / "deploy" / "production.env.example"
# Read by settings.py but meaningful only for the embedded run and the test lanes.
DEVELOPMENT_ONLY = {"SQLITE_TEST_NAME"}
_ENV_CALL = re.compile(r"""(?:\benv(?:iron\.Env\(\))?\.\w+|_required)\(\s*["']([A-Z][A-Z0-9_]*)["']""")


def _settings_variables() -> set[str]:
    return set(_ENV_CALL.findall((ROOT / "portal" / "settings.py").read_text(encoding="utf-8")))


def _example_variables() -> dict[str, str]:
    values = {}
    for line in EXAMPLE.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, _, value = line.partition("=")
        values[name.strip()] = value.strip().strip('"')
    return values


def _acp_material(directory: Path) -> dict[str, str]:
    """Certificates at the paths the example's ACP_* variables name on a real host (payments.E010 otherwise)."""
    from payments.gateway.acp.testing import build_ca, to_pkcs12, write_ca

    ca = build_ca()
    files = write_ca(ca, directory)
    (directory / "sign.pfx").write_bytes(to_pkcs12(ca.sign_key, ca.sign_cert, b"135790"))
    return {
        "ACP_SIGN_PKCS12_PATH": str(directory / "sign.pfx"),
        "ACP_SIGN_PKCS12_PASSWORD": "135790",
        "ACP_ROOT_CERT_PATHS": str(files.root_cert),
        "ACP_MIDDLE_CERT_PATHS": str(files.middle_cert),
        "ACP_VERIFY_CERT_PATHS": str(files.sign_cert),
    }


def _check_deploy(tmp_path, **overrides) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "CELERY_", "SMS_", "ALIYUN_"))}
    env.pop("DATABASE_URL", None)
    env.pop("REDIS_URL", None)
    env.update(_example_variables())
    env.update(PORTAL_VAR_DIR=str(tmp_path), STATIC_ROOT=str(tmp_path / "static"), MEDIA_ROOT=str(tmp_path / "media"))
    env.update(_acp_material(tmp_path / "acp"))
    env.update(overrides)
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_example_names_every_variable_settings_reads():
    read = _settings_variables()
    assert {"DJANGO_SECRET_KEY", "DATABASE_URL", "SMS_BACKEND"} <= read  # the parser works
    assert read - DEVELOPMENT_ONLY - set(_example_variables()) == set()


def test_example_names_no_variable_settings_ignores():
    assert set(_example_variables()) - _settings_variables() == set()


def test_readme_table_documents_every_variable():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    rows = set(re.findall(r"^\|\s*`([A-Z][A-Z0-9_]*)`\s*\|", readme, flags=re.MULTILINE))
    assert _settings_variables() - rows == set()


def test_production_example_passes_check_deploy(tmp_path):
    # given the example environment with a real secret key
    result = _check_deploy(tmp_path, DJANGO_SECRET_KEY=secrets.token_urlsafe(64))
    # then Django and the portal's own deploy checks find nothing
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout, result.stdout + result.stderr


def test_placeholder_secret_key_is_reported(tmp_path):
    # the example's CHANGE-ME key is short: Django's security.W009 must fire
    result = _check_deploy(tmp_path)
    assert result.returncode == 1
    assert "security.W009" in result.stderr


@pytest.mark.parametrize(
    ("overrides", "check_id"),
    [
        ({"SESSION_IDLE_SECONDS": "1800"}, "portal.W001"),
        ({"SESSION_ABSOLUTE_SECONDS": "86400"}, "portal.W002"),
        ({"UPLOAD_MAX_BYTES": "0"}, "portal.W005"),
        ({"ACP_BASE_URL": ""}, "payments.W001"),
        ({"ACP_SIGN_PKCS12_PATH": ""}, "payments.W002"),
        ({"ACP_MIDDLE_CERT_PATHS": ""}, "payments.W003"),
        ({"ACP_BACK_URL": "http://portal.example.com/gateway/acp/notify/"}, "payments.W004"),
        ({"ACP_ROOT_CERT_PATHS": "/nonexistent/root.cer"}, "payments.E010"),
    ],
)
def test_portal_deploy_checks_fire(tmp_path, overrides, check_id):
    result = _check_deploy(tmp_path, DJANGO_SECRET_KEY=secrets.token_urlsafe(64), **overrides)
    assert result.returncode == 1
    assert check_id in result.stderr


def test_production_refuses_the_outbox(tmp_path):
    result = _check_deploy(tmp_path, DJANGO_SECRET_KEY=secrets.token_urlsafe(64), SMS_BACKEND="outbox")
    assert result.returncode != 0
    assert "SMS_BACKEND" in result.stderr
