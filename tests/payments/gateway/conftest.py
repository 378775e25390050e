"""Shared key material: RSA key generation is slow, so the CAs are built once per session."""

from datetime import UTC, datetime, timedelta

import pytest

from payments.gateway.acp.testing import build_ca, merchant_cn

MER_ID = "777290058110048"


@pytest.fixture(scope="session")
def ca():
    return build_ca(sign_serial=68759663125)


@pytest.fixture(scope="session")
def other_ca():
    # Same subject names as ``ca`` on purpose: only the keys tell them apart.
    return build_ca()


@pytest.fixture(scope="session")
def merchant(ca):
    """The merchant's own signing key and certificate (issued by the sandbox CA, serial = certId)."""
    return ca.issue(merchant_cn(MER_ID), serial=70000000001)


@pytest.fixture
def now():
    return datetime.now(UTC)


@pytest.fixture
def past():
    return datetime.now(UTC) - timedelta(days=400)
