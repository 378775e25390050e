"""A code submitted twice at the same moment is accepted once (row lock on the device). PostgreSQL."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, connections

from portal.accounts import auth_services
from portal.audit.models import AuditEvent
from tests.factories import MerchantFactory, UserFactory


def _on_postgresql() -> bool:
    return connection.vendor == "postgresql"


@pytest.fixture
def audit_flushable(django_db_setup, django_db_blocker):
    """The audit table is append-only on PostgreSQL (triggers refuse TRUNCATE): its triggers are
    switched off for the flush that ends a transactional test (below) and back on here after it."""
    yield
    if _on_postgresql():
        with django_db_blocker.unblock(), connection.cursor() as cursor:
            cursor.execute("ALTER TABLE audit_auditevent ENABLE TRIGGER USER")


@pytest.fixture
def triggers_off_for_flush(transactional_db):
    yield
    if _on_postgresql():
        with connection.cursor() as cursor:
            cursor.execute("ALTER TABLE audit_auditevent DISABLE TRIGGER USER")


@pytest.mark.integration
@pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL (DATABASE_URL=postgres://...)")
# transactional_db (through triggers_off_for_flush) gives real transactions, as django_db(transaction=True) would.
def test_double_submit_of_one_code_succeeds_once(audit_flushable, triggers_off_for_flush, monkeypatch):
    from portal.accounts.sms import tasks

    monkeypatch.setattr(tasks.send_sms_message, "delay", lambda *args, **kwargs: None)
    user = UserFactory(organisation=MerchantFactory(), username="race.user")
    auth_services.login_sms_device(user)
    device = auth_services.sms_code_send(user=user, purpose="login", phone=user.phone, challenge="nonce-A")
    code = device.token
    barrier = threading.Barrier(2)
    results: list[bool] = []
    errors: list[BaseException] = []

    def submit():
        try:
            barrier.wait(timeout=10)
            check = auth_services.auth_otp_verify(user=user, method="sms", token=code, challenge="nonce-A", ip=None)
            results.append(check.ok)
        except BaseException as exc:  # reported below, a thread must not swallow it
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=submit) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert errors == []
    assert sorted(results) == [False, True]
    assert AuditEvent.objects.filter(action="auth.otp_success").count() == 1
    assert AuditEvent.objects.filter(action="auth.otp_failure").count() == 1
