"""The append-only rule and the hash chain: ``audit_verify`` catches every kind of tampering."""

import io

import pytest
from django.core.management import call_command
from django.db import DatabaseError, IntegrityError, connection

from portal.audit.models import AppendOnlyError, AuditEvent
from portal.audit.services import _escape_unprintable, audit_record, audit_verify_chain
from portal.core.context import RequestOrigin, reset_origin, set_origin

pytestmark = pytest.mark.django_db


@pytest.fixture
def chain(admin_a):
    """Five events, sequences 1..5 (each test runs in a rolled-back transaction)."""
    made = [audit_record(action=f"test.step{i}", actor=admin_a, details={"i": i}) for i in range(1, 6)]
    assert [e.sequence for e in made] == [1, 2, 3, 4, 5]
    return made


def run_verify() -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("audit_verify", stdout=out, stderr=err)
        code = 0
    except SystemExit as exit_:
        code = exit_.code
    return code, out.getvalue().strip(), err.getvalue().strip()


def raw(sql, params=()):
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def drop_sqlite_triggers():
    # The triggers go inside the test's transaction; the rollback brings them back (DDL is
    # transactional in SQLite and PostgreSQL alike).
    if connection.vendor == "postgresql":
        raw("ALTER TABLE audit_auditevent DISABLE TRIGGER USER")
        return
    raw("DROP TRIGGER audit_event_no_update")
    raw("DROP TRIGGER audit_event_no_delete")


def test_intact_chain_prints_ok_and_count(chain):
    assert run_verify() == (0, "OK 5", "")


def test_empty_chain_is_ok(db):
    assert run_verify() == (0, "OK 0", "")


def test_altered_details_are_named(chain):
    drop_sqlite_triggers()
    raw("UPDATE audit_auditevent SET details = %s WHERE sequence = 3", ['{"i": 33}'])
    code, out, err = run_verify()
    assert (code, out) == (1, "")
    assert err == "BROKEN at sequence 3: content altered (2 events verified before it)"


def test_altered_actor_is_named(chain):
    drop_sqlite_triggers()
    raw("UPDATE audit_auditevent SET actor_repr = 'someone.else' WHERE sequence = 4")
    assert run_verify()[2] == "BROKEN at sequence 4: content altered (3 events verified before it)"


def test_removed_middle_event_is_named(chain):
    drop_sqlite_triggers()
    raw("DELETE FROM audit_auditevent WHERE sequence = 3")
    assert run_verify() == (1, "", "BROKEN at sequence 3: missing or reordered event (2 events verified before it)")


def test_removed_last_event_is_named(chain):
    drop_sqlite_triggers()
    raw("DELETE FROM audit_auditevent WHERE sequence = 5")
    assert run_verify() == (
        1,
        "",
        "BROKEN at sequence 5: events missing at the end of the chain (4 events verified before it)",
    )


def test_swapped_events_are_detected(chain):
    drop_sqlite_triggers()
    raw("UPDATE audit_auditevent SET sequence = 1000 WHERE sequence = 2")
    raw("UPDATE audit_auditevent SET sequence = 2 WHERE sequence = 3")
    raw("UPDATE audit_auditevent SET sequence = 3 WHERE sequence = 1000")
    code, _, err = run_verify()
    assert code == 1
    assert err == "BROKEN at sequence 2: link to the previous event broken (1 events verified before it)"


def test_rehashed_event_still_breaks_the_next_link(chain):
    # An attacker who alters an event and recomputes its hash breaks the link to the next event.
    from portal.audit.services import compute_hash

    drop_sqlite_triggers()
    event = AuditEvent.objects.get(sequence=2)
    event.details = {"i": 222}
    raw("UPDATE audit_auditevent SET details = %s, hash = %s WHERE sequence = 2", ['{"i": 222}', compute_hash(event)])
    assert run_verify()[2] == "BROKEN at sequence 3: link to the previous event broken (2 events verified before it)"


def test_verification_reads_in_chunks(chain):
    assert audit_verify_chain(batch_size=2).ok is True
    assert audit_verify_chain(batch_size=2).count == 5
    drop_sqlite_triggers()
    raw("DELETE FROM audit_auditevent WHERE sequence = 4")
    report = audit_verify_chain(batch_size=2)
    assert (report.ok, report.first_broken_sequence, report.count) == (False, 4, 3)


def test_events_appended_after_the_head_was_read_are_not_a_broken_tail(chain, admin_a, monkeypatch):
    # A writer appending while the walk runs must not make an intact chain look broken.
    from portal.audit import services

    real_filter = services.AuditEvent.objects.order_by

    def order_by_then_append(*args):
        qs = real_filter(*args)
        audit_record(action="test.concurrent", actor=admin_a)
        return qs

    monkeypatch.setattr(services.AuditEvent.objects, "order_by", order_by_then_append)
    report = audit_verify_chain()
    assert (report.ok, report.count) == (True, 5)


# --- Append-only: model, queryset and trigger ----------------------------------------------


def test_model_refuses_to_save_an_existing_event(chain):
    event = AuditEvent.objects.get(sequence=1)
    event.action = "changed"
    with pytest.raises(AppendOnlyError):
        event.save()
    assert AuditEvent.objects.get(sequence=1).action == "test.step1"


def test_model_refuses_delete(chain):
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.get(sequence=1).delete()
    assert AuditEvent.objects.count() == 5


def test_queryset_refuses_update_and_delete(chain):
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.filter(sequence=1).update(action="changed")
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.all().delete()
    assert AuditEvent.objects.count() == 5


@pytest.mark.sqlite_only
@pytest.mark.skipif(connection.vendor != "sqlite", reason="the SQLite trigger")
@pytest.mark.parametrize(
    "sql",
    ["UPDATE audit_auditevent SET action = 'changed' WHERE sequence = 1", "DELETE FROM audit_auditevent"],
)
def test_sqlite_trigger_refuses_raw_writes(chain, sql):
    from django.db import transaction

    with pytest.raises((IntegrityError, DatabaseError), match="append-only"):
        with transaction.atomic():
            raw(sql)
    assert AuditEvent.objects.count() == 5
    assert run_verify()[0] == 0


# --- What audit_record stores ---------------------------------------------------------------


def test_chinese_username_is_kept_and_control_characters_are_escaped(merchant_a):
    from tests.factories import UserFactory

    user = UserFactory(organisation=merchant_a, username="张三")
    event = audit_record(action="test.name", actor=user)
    forged = audit_record(action="auth.login_failed", actor_repr="eve\n#9 auth.login success")
    assert event.actor_repr == "张三"
    assert forged.actor_repr == "eve\\n#9 auth.login success"
    assert _escape_unprintable("a\x00b\u202ec") == "a\\x00b\\u202ec"
    assert audit_verify_chain().ok


def test_ipv6_origin_is_stored_in_the_form_that_was_hashed(admin_a):
    token = set_origin(RequestOrigin(ip="2001:0db8:0000:0000:0000:0000:0000:0001", user_agent="ua", request_id="r"))
    try:
        audit_record(action="test.ipv6", actor=admin_a)
    finally:
        reset_origin(token)
    stored = AuditEvent.objects.get(action="test.ipv6")
    assert stored.ip == "2001:db8::1"
    assert audit_verify_chain().ok


def test_actor_text_survives_user_deletion(merchant_a):
    from tests.factories import UserFactory

    # given an event by a user
    user = UserFactory(organisation=merchant_a, username="leaver")
    user_id = user.pk
    audit_record(action="test.leave", actor=user)
    # when the user is deleted
    user.delete()
    # then the event is untouched: the name and the (now dangling) id remain, and the chain holds
    event = AuditEvent.objects.get(action="test.leave")
    assert (event.actor_id, event.actor_repr) == (user_id, "leaver")
    assert audit_verify_chain().ok
