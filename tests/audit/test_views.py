"""The audit log pages: access rules, scoping, filters, and exactly one audit event per read."""

import datetime as dt

import pytest
from django.test import Client

from portal.audit.models import AuditEvent
from portal.audit.services import audit_record
from tests.factories import login_password_only

pytestmark = pytest.mark.django_db

LIST = "/audit/"
EXPORT = "/audit/export.csv"
VERIFY = "/audit/verify/"


def detail(event):
    return f"/audit/{event.sequence}/"


def shown_sequences(response) -> set[int]:
    return {row.record.sequence for row in response.context["table"].paginated_rows}


# --- Access: anonymous, password only, missing permission -------------------------------------


@pytest.mark.parametrize("method,path", [("get", LIST), ("get", EXPORT), ("post", VERIFY), ("get", "/audit/1/")])
def test_anonymous_is_sent_to_login_and_nothing_is_audited(method, path, events, new_events):
    # given an anonymous visitor
    new = new_events()
    # when they open an audit page
    response = getattr(Client(), method)(path)
    # then they are sent to the login page and no event is written
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")
    assert new.all == []


@pytest.mark.parametrize("method,path", [("get", LIST), ("get", EXPORT), ("post", VERIFY), ("get", "/audit/1/")])
def test_password_only_session_is_sent_to_second_factor(method, path, auditor, events, new_events):
    # given an auditor who has passed the password step only
    client = Client()
    login_password_only(client, auditor)
    new = new_events()
    # when they open an audit page
    response = getattr(client, method)(path)
    # then they must confirm the second factor first, and nothing is audited
    assert response.status_code == 302
    assert response["Location"] == "/accounts/verify/"
    assert new.all == []


@pytest.mark.parametrize("method,path", [("get", LIST), ("get", EXPORT), ("post", VERIFY), ("get", "detail")])
def test_user_without_audit_permission_is_refused(method, path, operator_a, events, client_for, new_events):
    # given a merchant operator (no audit permission) and an event of their own organisation
    client = client_for(operator_a)
    path = detail(events["a"]) if path == "detail" else path
    new = new_events()
    # when they open an audit page
    response = getattr(client, method)(path)
    # then it is refused and nothing is audited
    assert response.status_code == 403
    assert new.all == []


def test_platform_admin_has_no_audit_access(platform_admin, client_for, new_events):
    client = client_for(platform_admin)
    new = new_events()
    assert client.get(LIST).status_code == 403
    assert new.all == []


def test_merchant_admin_may_view_but_not_export(admin_a, events, client_for, new_events):
    # given a merchant administrator (audit.view without audit.export)
    client = client_for(admin_a)
    new = new_events()
    # when they try to export
    response = client.get(EXPORT)
    # then it is refused without an event, while the list opens and hides the export button
    assert response.status_code == 403
    assert new.all == []
    page = client.get(LIST)
    assert page.status_code == 200
    assert 'data-testid="audit-export"' not in page.content.decode()


def test_verify_refuses_get(auditor, client_for, new_events):
    client = client_for(auditor)
    new = new_events()
    assert client.get(VERIFY).status_code == 405
    assert new.all == []


# --- Scoping --------------------------------------------------------------------------------


def test_merchant_sees_only_its_own_events(admin_a, events, client_for):
    response = client_for(admin_a).get(LIST)
    assert response.status_code == 200
    assert shown_sequences(response) == {events["a"].sequence}


def test_acquirer_sees_itself_and_its_merchants(acquirer_admin, events, client_for):
    response = client_for(acquirer_admin).get(LIST)
    assert shown_sequences(response) == {events["a"].sequence, events["acq"].sequence}


def test_platform_auditor_sees_everything(auditor, events, client_for):
    client = client_for(auditor)
    existing = set(AuditEvent.objects.values_list("sequence", flat=True))
    response = client.get(LIST)
    assert {e.sequence for e in events.values()} <= existing
    assert shown_sequences(response) == existing


def test_other_organisations_event_is_404_and_not_audited(admin_a, events, client_for, new_events):
    # given merchant A's administrator and an event of merchant B
    client = client_for(admin_a)
    new = new_events()
    # when they open B's event, or one that does not exist
    missing = client.get("/audit/999999/")
    other = client.get(detail(events["b"]))
    # then both are 404 and nothing is audited
    assert other.status_code == 404
    assert missing.status_code == 404
    assert new.all == []


def test_organisation_filter_offers_only_visible_organisations(admin_a, merchant_a, merchant_b, client_for):
    response = client_for(admin_a).get(LIST)
    choices = list(response.context["filter"].form.fields["organisation"].queryset)
    assert choices == [merchant_a]


def test_filtering_on_another_organisation_is_invalid_and_shows_nothing(admin_a, merchant_b, events, client_for):
    response = client_for(admin_a).get(LIST, {"organisation": merchant_b.code})
    assert response.status_code == 200
    assert "organisation" in response.context["filter"].errors
    assert shown_sequences(response) == set()


# --- Exactly one audit event per read --------------------------------------------------------


def test_list_writes_one_audit_view_event(merchant_auditor, events, client_for, new_events):
    client = client_for(merchant_auditor)
    new = new_events()
    response = client.get(LIST)
    assert response.status_code == 200
    [event] = new.all
    assert (event.action, event.actor_repr, event.organisation_id, event.outcome) == (
        "audit.view",
        "a.auditor",
        merchant_auditor.organisation_id,
        "success",
    )
    assert event.details == {"page": "1"}
    # The page shows the log as it was when opened: its own view event is not on it.
    assert event.sequence not in shown_sequences(response)


def test_filtered_list_writes_one_audit_filter_event_with_the_filters(auditor, events, client_for, new_events):
    client = client_for(auditor)
    new = new_events()
    response = client.get(LIST, {"action": "user.create", "outcome": "success", "page": "1"})
    assert response.status_code == 200
    assert shown_sequences(response) == {events["a"].sequence, events["b"].sequence}
    [event] = new.all
    assert event.action == "audit.filter"
    assert event.details == {"filters": {"action": "user.create", "outcome": "success"}, "page": "1"}


def test_detail_shows_every_field_and_writes_one_event(auditor, events, client_for, new_events):
    client = client_for(auditor)
    target = events["acq"]
    new = new_events()
    response = client.get(detail(target))
    assert response.status_code == 200
    body = response.content.decode()
    for text in (
        target.hash,
        target.prev_hash,
        "organisation.update",
        "acq.admin",
        "&quot;field&quot;: &quot;name&quot;",
    ):
        assert text in body
    [event] = new.all
    assert (event.action, event.object_type, event.object_id) == (
        "audit.view_event",
        "audit.auditevent",
        str(target.sequence),
    )


def test_verify_shows_ok_and_writes_one_event(auditor, events, client_for, new_events):
    client = client_for(auditor)
    total = AuditEvent.objects.count()
    new = new_events()
    response = client.post(VERIFY)
    assert response.status_code == 200
    assert response.context["report"].ok is True
    assert response.context["report"].verified == total
    assert 'data-ok="true"' in response.content.decode()
    [event] = new.all
    assert event.action == "audit.verify"
    assert event.details == {"ok": True, "verified": total, "first_broken_sequence": None, "reason": ""}


def test_verify_for_a_merchant_counts_only_its_own_events(admin_a, events, client_for):
    # A merchant must not learn the platform-wide number of events.
    response = client_for(admin_a).post(VERIFY)
    own = AuditEvent.objects.filter(organisation=admin_a.organisation, sequence__lte=events["none"].sequence).count()
    assert response.context["report"].verified == own


# --- Filters ---------------------------------------------------------------------------------


@pytest.fixture
def timed_events(admin_a, time_machine):
    """Two events of merchant A, at 09:00 and 11:00 Beijing time on 2026-03-02."""
    time_machine.move_to(dt.datetime(2026, 3, 2, 1, 0, tzinfo=dt.UTC), tick=False)
    early = audit_record(action="refund.create", actor=admin_a, object_type="refunds.refund", object_id="R1")
    time_machine.move_to(dt.datetime(2026, 3, 2, 3, 0, tzinfo=dt.UTC), tick=False)
    late = audit_record(action="refund.approve", actor=admin_a, object_type="refunds.refund", object_id="R2")
    return early, late


@pytest.mark.parametrize(
    "params,expected",
    [
        ({"time_after": "2026-03-02T10:00"}, {"late"}),
        ({"time_before": "2026-03-02T10:00"}, {"early"}),
        ({"time_after": "2026-03-02T08:59:59", "time_before": "2026-03-02T09:00:01"}, {"early"}),
        ({"action": "refund.approve"}, {"late"}),
        ({"action": "refund.*"}, {"early", "late"}),
        ({"object_type": "refunds.refund", "object_id": "R1"}, {"early"}),
        ({"actor": "A.ADM"}, {"early", "late"}),
        ({"actor": "nobody"}, set()),
        ({"outcome": "failure"}, set()),
    ],
)
def test_filters_narrow_the_list(params, expected, admin_a, timed_events, client_for):
    early, late = timed_events
    by_name = {"early": early.sequence, "late": late.sequence}
    response = client_for(admin_a).get(LIST, params)
    assert response.status_code == 200
    assert shown_sequences(response) == {by_name[n] for n in expected}


def test_ip_filter_matches_the_address_and_rejects_garbage(auditor, client_for, rf):
    from portal.core.context import RequestOrigin, reset_origin, set_origin

    token = set_origin(RequestOrigin(ip="203.0.113.9", user_agent="UA", request_id="req-12345678"))
    try:
        event = audit_record(action="test.ip", actor=auditor)
    finally:
        reset_origin(token)
    client = client_for(auditor)
    assert shown_sequences(client.get(LIST, {"ip": "203.0.113.9"})) == {event.sequence}
    bad = client.get(LIST, {"ip": "not-an-ip"})
    assert "ip" in bad.context["filter"].errors
    assert shown_sequences(bad) == set()


def test_list_paginates_25_a_page(admin_a, client_for):
    for i in range(30):
        audit_record(action="test.bulk", actor=admin_a, object_id=i)
    client = client_for(admin_a)
    first = client.get(LIST, {"action": "test.bulk"})
    second = client.get(LIST, {"action": "test.bulk", "page": "2"})
    assert len(shown_sequences(first)) == 25
    assert len(shown_sequences(second)) == 5
    assert shown_sequences(first).isdisjoint(shown_sequences(second))


def test_list_query_count_does_not_grow_with_rows(admin_a, client_for, django_assert_num_queries):
    client = client_for(admin_a)
    client.get(LIST)  # warm caches (content types, sessions)
    for i in range(3):
        audit_record(action="test.bulk", actor=admin_a, object_id=i)
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as few:
        client.get(LIST)
    for i in range(40):
        audit_record(action="test.bulk", actor=admin_a, object_id=i)
    with CaptureQueriesContext(connection) as many:
        client.get(LIST)
    assert len(many) == len(few)
    # session, user with organisation and roles, device, count, actions, org choices, page, audit write (7);
    # no session save (the activity stamp is written once a minute)
    with django_assert_num_queries(13):
        client.get(LIST)


def test_times_are_beijing_with_utc_in_title(admin_a, timed_events, client_for):
    body = client_for(admin_a).get(LIST).content.decode()
    assert (
        '<time datetime="2026-03-02T01:00:00+00:00" title="2026-03-02 01:00:00 UTC">2026-03-02 09:00:00</time>' in body
    )


def test_list_shows_outcome_badges(auditor, events, client_for):
    body = client_for(auditor).get(LIST).content.decode()
    assert 'class="badge text-bg-warning" data-outcome="failure"' in body
    assert 'class="badge text-bg-success" data-outcome="success"' in body


def _break_event(sequence):
    from django.db import connection

    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("ALTER TABLE audit_auditevent DISABLE TRIGGER USER")
        else:
            cursor.execute("DROP TRIGGER audit_event_no_update")
        cursor.execute("UPDATE audit_auditevent SET details = '{\"forged\": true}' WHERE sequence = %s", [sequence])


def test_verify_names_the_broken_sequence_and_records_a_failure(auditor, events, client_for, new_events):
    # given a platform auditor and an altered event of merchant B
    client = client_for(auditor)
    _break_event(events["b"].sequence)
    new = new_events()
    # when they verify
    response = client.post(VERIFY)
    # then the page names the sequence and the reason, and the verify event records the failure
    body = response.content.decode()
    assert 'data-ok="false"' in body
    assert f"at sequence {events['b'].sequence}:" in body
    assert "content altered" in body
    [event] = new.all
    assert (event.action, event.outcome) == ("audit.verify", "failure")
    assert event.details == {
        "ok": False,
        "verified": events["b"].sequence - 1,
        "first_broken_sequence": events["b"].sequence,
        "reason": "content altered",
    }


def test_verify_hides_a_broken_sequence_outside_the_readers_scope(admin_a, events, client_for):
    # given merchant A's admin and an altered event of merchant B
    client = client_for(admin_a)
    _break_event(events["b"].sequence)
    # when they verify
    response = client.post(VERIFY)
    # then they learn the chain is broken, but not where in another organisation's events
    report = response.context["report"]
    assert (report.ok, report.first_broken_sequence, report.verified) == (False, None, 1)
    assert f"at sequence {events['b'].sequence}" not in response.content.decode()
