"""Automated review (security.md D8): a burst of failed sign-ins raises one security alert per rule
key and window, across all usernames and per client IP; a crafted username yields one escaped record."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from unittest import mock

import pytest
import time_machine
from django.test import Client

from portal.accounts.auth_services import auth_login_failure, auth_otp_verify
from portal.audit import alerts
from portal.audit.models import AuditEvent
from portal.audit.services import audit_verify_chain
from portal.core.context import RequestOrigin, reset_origin, set_origin
from tests.accounts.auth_helpers import password_step

pytestmark = pytest.mark.django_db

START = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)


def fail(username: str = "nobody", ip: str | None = "10.0.0.1") -> None:
    """One failed password step, recorded as the login view records it."""
    token = set_origin(RequestOrigin(ip=ip, user_agent="ua", request_id="r"))
    try:
        auth_login_failure(username=username)
    finally:
        reset_origin(token)


def alert_events() -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action="security.alert").order_by("sequence"))


def failure_sequences() -> list[int]:
    return list(
        AuditEvent.objects.filter(action__in=alerts.FAILURE_ACTIONS)
        .order_by("sequence")
        .values_list("sequence", flat=True)
    )


@pytest.fixture
def clock():
    with time_machine.travel(START, tick=False) as traveller:
        yield traveller


def test_twenty_failures_across_usernames_in_five_minutes_raise_one_alert(
    clock, caplog, django_capture_on_commit_callbacks
):
    # given 19 failures, each from another IP and username, spread over 4 minutes 45 seconds
    for i in range(19):
        fail(f"user{i}", ip=f"10.0.1.{i}")
        clock.shift(15)
    assert alert_events() == []

    # when the 20th arrives, still within 300 s of the first
    with caplog.at_level(logging.ERROR, logger="portal.security"):
        with django_capture_on_commit_callbacks(execute=True):
            fail("user19", ip="10.0.1.19")

    # then one security.alert, by the system, naming the window's failures
    [alert] = alert_events()
    sequences = failure_sequences()
    assert (alert.actor_id, alert.actor_repr, alert.organisation_id, alert.outcome) == (None, "system", None, "success")
    assert alert.details == {
        "rule": "sign_in_failure_burst",
        "count": 20,
        "threshold": 20,
        "window": 300,
        "ip": "all",
        "first_sequence": sequences[0],
        "last_sequence": sequences[-1],
    }
    assert alert.sequence == sequences[-1] + 1
    [record] = [r for r in caplog.records if r.name == "portal.security"]
    assert record.levelno == logging.ERROR
    assert record.getMessage() == (
        f"Security alert sign_in_failure_burst: 20 failed sign-ins in 300 s from all "
        f"(audit events #{sequences[0]} to #{sequences[-1]}; alert #{alert.sequence})"
    )
    assert audit_verify_chain().ok


def test_the_alert_fires_once_per_window_and_again_in_the_next(clock):
    for i in range(25):
        fail(f"user{i}", ip=f"10.0.2.{i}")
        clock.shift(1)
    assert len(alert_events()) == 1  # 21st to 25th: the same window, no second alert

    clock.shift(300)  # the alert is 300 s old, the old failures have left the window
    for i in range(19):
        fail(f"late{i}", ip=f"10.0.3.{i}")
    assert len(alert_events()) == 1
    fail("late19", ip="10.0.3.19")
    first, second = alert_events()
    assert second.details["count"] == 20
    assert second.details["first_sequence"] > first.details["last_sequence"]


def test_failures_outside_the_window_do_not_count(clock):
    for i in range(10):
        fail(f"user{i}", ip=f"10.0.4.{i}")
    clock.shift(300)  # exactly the window: the first ten are out
    for i in range(19):
        fail(f"later{i}", ip=f"10.0.5.{i}")
    assert alert_events() == []


def test_one_ip_crossing_its_threshold_raises_its_own_alert(clock, settings):
    settings.SECURITY_ALERT_FAILURES = 1000  # the rule across usernames out of the way
    for i in range(19):
        fail(f"user{i}", ip="203.0.113.7")
        fail(f"other{i}", ip=f"198.51.100.{i}")  # other IPs do not count towards 203.0.113.7
    fail("anyone", ip=None)  # no IP (a job): counted across usernames only
    assert alert_events() == []

    fail("user19", ip="203.0.113.7")
    fail("user20", ip="203.0.113.7")

    [alert] = alert_events()
    assert alert.details["rule"] == "sign_in_failure_burst_per_ip"
    assert (alert.details["ip"], alert.details["count"], alert.details["window"]) == ("203.0.113.7", 20, 300)
    ip_sequences = list(
        AuditEvent.objects.filter(action="auth.login_failure", ip="203.0.113.7")
        .order_by("sequence")
        .values_list("sequence", flat=True)
    )
    assert (alert.details["first_sequence"], alert.details["last_sequence"]) == (ip_sequences[0], ip_sequences[19])

    # another IP has its own key
    for i in range(20):
        fail(f"x{i}", ip="192.0.2.1")
    assert [a.details["ip"] for a in alert_events()] == ["203.0.113.7", "192.0.2.1"]


def test_per_ip_settings_are_separate(clock, settings):
    settings.SECURITY_ALERT_FAILURES = 1000
    settings.SECURITY_ALERT_IP_FAILURES = 3
    settings.SECURITY_ALERT_IP_WINDOW_SECONDS = 60
    fail(ip="192.0.2.9")
    fail(ip="192.0.2.9")
    clock.shift(60)
    fail(ip="192.0.2.9")
    fail(ip="192.0.2.9")
    assert alert_events() == []
    fail(ip="192.0.2.9")
    [alert] = alert_events()
    assert (alert.details["count"], alert.details["threshold"], alert.details["window"]) == (3, 3, 60)


def test_wrong_codes_count_too(clock, operator_a):
    for i in range(10):
        fail(f"user{i}", ip=f"10.0.6.{i}")
    token = set_origin(RequestOrigin(ip="10.0.7.1", user_agent="ua", request_id="r"))
    try:
        for _ in range(10):
            check = auth_otp_verify(user=operator_a, method="totp", token="000000", challenge="c", ip="10.0.7.1")
            assert not check.ok
    finally:
        reset_origin(token)
    assert AuditEvent.objects.filter(action="auth.otp_failure").count() == 10
    [alert] = alert_events()
    assert alert.details["count"] == 20


def test_a_burst_through_the_login_view_raises_the_alert(settings, admin_a):
    # credential stuffing: many usernames (the per-username lockout never triggers), one address
    settings.SECURITY_ALERT_FAILURES = 1000
    settings.SECURITY_ALERT_IP_FAILURES = 5
    for i in range(5):
        response = password_step(Client(), f"stuffed{i}", "Wrong-pass-2026x", ip="198.51.100.200")
        assert response.status_code == 200
    [alert] = alert_events()
    assert (alert.details["ip"], alert.details["count"], alert.ip) == ("198.51.100.200", 5, "198.51.100.200")


def test_a_broken_rule_never_loses_the_failure(clock, caplog):
    with mock.patch.object(alerts, "_check", side_effect=RuntimeError("boom")):
        with caplog.at_level(logging.ERROR, logger="portal.security"):
            fail("eve")
    assert AuditEvent.objects.get().action == "auth.login_failure"
    [record] = [r for r in caplog.records if r.name == "portal.security"]
    assert record.levelno == logging.ERROR and "alert rule failed" in record.getMessage()


def test_the_check_is_one_query_below_the_threshold(clock, django_assert_num_queries):
    fail("warm-up")
    from portal.audit.services import audit_record

    failure = audit_record(action="auth.login_failure", actor_repr="x", outcome="failure")
    # the aggregate query, inside a savepoint (SAVEPOINT and RELEASE)
    with django_assert_num_queries(3):
        assert alerts.sign_in_failure_alert_check(failure=failure) == []


# --- log injection (D8, first half) ------------------------------------------------------------------


def test_a_crafted_username_yields_one_escaped_record(caplog):
    username = "eve\r\n2026-03-02 INFO portal \x1b[32mauth.login_success admin\x1b[0m\rok"
    with caplog.at_level(logging.DEBUG):
        response = password_step(Client(), username, "Wrong-pass-2026x")

    assert response.status_code == 200
    [event] = AuditEvent.objects.all()
    assert event.action == "auth.login_failure"
    assert event.actor_repr == ("eve\\r\\n2026-03-02 INFO portal \\x1b[32mauth.login_success admin\\x1b[0m\\rok")
    assert not any(ch in event.actor_repr for ch in "\r\n\x1b")
    # and no log line of the request carries the raw control characters either
    for record in caplog.records:
        assert not any(ch in record.getMessage() for ch in "\r\n\x1b"), record.getMessage()
