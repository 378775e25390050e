"""The audit trail on PostgreSQL: the triggers refuse UPDATE, DELETE and TRUNCATE, a DBA who
switches them off is still caught by ``audit_verify``, and concurrent writers build one chain."""

import io
import threading

import pytest
from django.core.management import call_command
from django.db import DatabaseError, connection, connections, transaction

from portal.audit.models import AuditEvent
from portal.audit.services import audit_record, audit_verify_chain

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL (DATABASE_URL=postgres://...)"),
]


def raw(sql, params=()):
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def run_verify() -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("audit_verify", stdout=out, stderr=err)
        return 0, out.getvalue().strip(), err.getvalue().strip()
    except SystemExit as exit_:
        return exit_.code, out.getvalue().strip(), err.getvalue().strip()


@pytest.fixture
def chain(db, admin_a):
    return [audit_record(action=f"test.pg{i}", actor=admin_a, details={"i": i}) for i in range(1, 4)]


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE audit_auditevent SET action = 'forged' WHERE sequence = 2",
        "DELETE FROM audit_auditevent WHERE sequence = 2",
        "TRUNCATE audit_auditevent",
    ],
)
def test_trigger_refuses_changes(chain, sql):
    with pytest.raises(DatabaseError, match="append-only"):
        with transaction.atomic():
            raw(sql)
    assert AuditEvent.objects.count() == 3
    assert run_verify() == (0, "OK 3", "")


def test_dba_who_disables_the_trigger_is_caught_by_verify(chain):
    # Simulating a DBA: the table owner switches the triggers off and alters an event.
    raw("ALTER TABLE audit_auditevent DISABLE TRIGGER USER")
    raw("UPDATE audit_auditevent SET details = %s WHERE sequence = 2", ['{"i": 20}'])
    raw("ALTER TABLE audit_auditevent ENABLE TRIGGER USER")
    assert run_verify() == (1, "", "BROKEN at sequence 2: content altered (1 events verified before it)")


def test_ip_addresses_round_trip_through_inet(db, admin_a):
    from portal.core.context import RequestOrigin, reset_origin, set_origin

    for ip in ("203.0.113.9", "2001:0db8::0001", "::ffff:192.0.2.1"):
        token = set_origin(RequestOrigin(ip=ip, user_agent="ua", request_id="r"))
        try:
            audit_record(action="test.ip", actor=admin_a)
        finally:
            reset_origin(token)
    assert audit_verify_chain().ok


# --- Concurrency: needs real transactions, so the table is emptied by flush afterwards ---------


@pytest.fixture
def audit_flushable(django_db_setup, django_db_blocker):
    """Lets the transactional test's flush (a TRUNCATE) empty the audit table: the triggers are
    switched off for the flush (``triggers_off_for_flush``) and switched back on after it here."""
    yield
    with django_db_blocker.unblock():
        with connection.cursor() as cursor:
            cursor.execute("ALTER TABLE audit_auditevent ENABLE TRIGGER USER")


@pytest.fixture
def triggers_off_for_flush(transactional_db):
    yield
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE audit_auditevent DISABLE TRIGGER USER")


def test_concurrent_writers_build_one_unbroken_chain(audit_flushable, triggers_off_for_flush, admin_a):
    # given 8 threads, each writing 20 events in its own transactions
    start = AuditEvent.objects.count()
    barrier = threading.Barrier(8)
    errors = []

    def writer(n):
        try:
            barrier.wait()
            for i in range(20):
                with transaction.atomic():
                    audit_record(action="test.concurrent", actor_repr=f"writer{n}", details={"i": i})
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # then every event landed, with contiguous sequence numbers, and the chain verifies
    assert errors == []
    sequences = list(AuditEvent.objects.order_by("sequence").values_list("sequence", flat=True))
    assert len(sequences) == start + 160
    assert sequences == list(range(1, start + 161))
    assert run_verify() == (0, f"OK {start + 160}", "")
