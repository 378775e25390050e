"""Fixtures: the tenant trio (merchant A admin and operator, merchant B admin) plus acquirer,
reviewer and auditor users, and clients signed in with both factors."""

import importlib

import pytest
from django.conf import settings
from django.db import connections
from django.test import Client, TransactionTestCase
from django.utils import translation

from .factories import AcquirerFactory, MerchantFactory, PlatformFactory, UserFactory, login_fully

_append_only = importlib.import_module("portal.audit.migrations.0002_append_only")


def _audit_triggers(enabled: bool) -> None:
    """Switch the append-only triggers of the audit table on or off on every test database."""
    for conn in connections.all():
        with conn.cursor() as cursor:
            if conn.vendor == "postgresql":
                cursor.execute(f"ALTER TABLE audit_auditevent {'ENABLE' if enabled else 'DISABLE'} TRIGGER USER")
            elif conn.vendor == "sqlite":
                for sql in _append_only.SQLITE_DOWN:
                    cursor.execute(sql)
                if enabled:
                    for sql in _append_only.SQLITE_UP:
                        cursor.execute(sql)


_original_fixture_teardown = TransactionTestCase._fixture_teardown


def _fixture_teardown_with_audit_flush(self):
    # A transactional test is cleaned up with a flush (TRUNCATE / DELETE), which the audit
    # table's triggers refuse by design: lift them for the flush only, as a DBA would.
    _audit_triggers(False)
    try:
        _original_fixture_teardown(self)
    finally:
        _audit_triggers(True)


TransactionTestCase._fixture_teardown = _fixture_teardown_with_audit_flush


@pytest.fixture(autouse=True)
def _empty_cache_for_each_test():
    """Counters in the cache (codes per client IP and day...) must not leak from one test, or one CI run on the
    shared Redis, into the next."""
    from django.core.cache import cache

    cache.clear()


@pytest.fixture(autouse=True)
def _default_language_after_each_test():
    """A request in Chinese leaves its language active in the thread: start every test in the default."""
    yield
    translation.activate(settings.LANGUAGE_CODE)


@pytest.fixture
def platform(db):
    return PlatformFactory()


@pytest.fixture
def acquirer(db):
    return AcquirerFactory()


@pytest.fixture
def merchant_a(acquirer):
    return MerchantFactory(acquirer=acquirer)


@pytest.fixture
def merchant_b(db):
    # Under another acquirer: nothing of A's is visible to B's people, nor the other way.
    return MerchantFactory()


@pytest.fixture
def admin_a(merchant_a):
    return UserFactory(organisation=merchant_a, username="a.admin", roles=["merchant_admin"])


@pytest.fixture
def operator_a(merchant_a):
    return UserFactory(organisation=merchant_a, username="a.operator", roles=["merchant_operator"])


@pytest.fixture
def reviewer_a(merchant_a):
    return UserFactory(organisation=merchant_a, username="a.reviewer", roles=["merchant_reviewer"])


@pytest.fixture
def admin_b(merchant_b):
    return UserFactory(organisation=merchant_b, username="b.admin", roles=["merchant_admin"])


@pytest.fixture
def acquirer_admin(acquirer):
    return UserFactory(organisation=acquirer, username="acq.admin", roles=["acquirer_admin"])


@pytest.fixture
def acquirer_reviewer(acquirer):
    return UserFactory(organisation=acquirer, username="acq.reviewer", roles=["acquirer_reviewer"])


@pytest.fixture
def auditor(platform):
    return UserFactory(organisation=platform, username="plat.auditor", roles=["auditor"])


@pytest.fixture
def merchant_auditor(merchant_a):
    return UserFactory(organisation=merchant_a, username="a.auditor", roles=["auditor"])


@pytest.fixture
def platform_admin(platform):
    return UserFactory(organisation=platform, username="plat.admin", roles=["platform_admin"], is_staff=True)


@pytest.fixture
def client_for(db):
    """``client_for(user)`` → a Client signed in with both factors."""

    def make(user):
        client = Client()
        login_fully(client, user)
        return client

    return make
