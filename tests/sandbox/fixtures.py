"""Sandbox key material and settings for the gateway and sandbox tests (imported by their modules)."""

from __future__ import annotations

import pytest

from payments.gateway import config
from payments.gateway.acp.codec import encode_request
from payments.gateway.acp.messages import format_txn_time
from payments.gateway.acp.testing import CaFiles


@pytest.fixture(scope="session")
def sandbox_dir(tmp_path_factory):
    """One sandbox CA and portal certificate for the session (RSA key generation is slow)."""
    directory = tmp_path_factory.mktemp("sandbox")
    config.ensure_sandbox_material(directory)
    return directory


@pytest.fixture
def acp_settings(settings, sandbox_dir):
    """Point the gateway configuration at the session's sandbox directory; no real sleep between queries."""
    settings.SANDBOX_ENABLED = True
    settings.SANDBOX_DIR = sandbox_dir
    settings.ACP_SIGN_PKCS12_PATH = ""
    settings.ACP_SIGN_KEY_PATH = str(sandbox_dir / "portal_sign.key")
    settings.ACP_SIGN_CERT_PATH = str(sandbox_dir / "portal_sign.crt")
    settings.ACP_ROOT_CERT_PATHS = [str(sandbox_dir / "root.crt")]
    settings.ACP_MIDDLE_CERT_PATHS = [str(sandbox_dir / "middle.crt")]
    settings.ACP_VERIFY_CERT_PATHS = [str(sandbox_dir / "sign.crt")]
    settings.ACP_ALLOWED_OWNERS = ["中国银联股份有限公司"]
    settings.ACP_QUERY_SLEEP = False
    settings.SANDBOX_NOTIFY_TIME_SCALE = 1 / 60
    settings.SANDBOX_PENDING_SECONDS = 20
    return settings


@pytest.fixture
def network_signer(sandbox_dir):
    return CaFiles.in_directory(sandbox_dir).signer()


def notification_fields(merchant_code: str, **overrides) -> dict[str, str]:
    """An unsigned consume notification as the network sends it."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    fields = {
        "version": "5.1.0",
        "encoding": "UTF-8",
        "signMethod": "01",
        "txnType": "01",
        "txnSubType": "01",
        "bizType": "000201",
        "accessType": "0",
        "channelType": "08",
        "merId": merchant_code,
        "orderId": "ORDER20260310A",
        "txnTime": format_txn_time(datetime(2026, 3, 10, 12, 30, 5, tzinfo=ZoneInfo("Asia/Shanghai"))),
        "txnAmt": "12345",
        "currencyCode": "156",
        "respCode": "00",
        "respMsg": "成功[0000000]",
        "queryId": "202603101230051234567",
        "traceNo": "123456",
        "traceTime": "0310123005",
        "settleDate": "0310",
        "settleAmt": "12345",
        "settleCurrencyCode": "156",
        "accNo": "6222020000000090001",
        "payCardType": "01",
    }
    fields.update(overrides)
    return fields


def form(params: dict[str, str]) -> bytes:
    return encode_request(params)
