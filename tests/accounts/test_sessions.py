"""Session lifetime (15 min idle, 12 h absolute), server-side logout, disabled users."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.contrib.sessions.models import Session
from django.test import Client
from django.utils import timezone

from portal.audit.models import AuditEvent

from .auth_helpers import HOME_URL, LOGIN_URL, actions, session_cookie, sign_in

pytestmark = pytest.mark.django_db

LOGOUT_URL = "/accounts/logout/"


@pytest.mark.parametrize(
    "idle,still_in", [(timedelta(minutes=14, seconds=59), True), (timedelta(minutes=15, seconds=1), False)]
)
def test_idle_timeout(admin_a, idle, still_in):
    client = Client()
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        sign_in(client, admin_a)
        assert client.get(HOME_URL).status_code == 200
        traveller.shift(idle)
        response = client.get(HOME_URL)
    if still_in:
        assert response.status_code == 200
        assert "auth.session_expired" not in actions()
    else:
        assert response.status_code == 302 and response["Location"] == LOGIN_URL
        event = AuditEvent.objects.get(action="auth.session_expired")
        assert (event.actor_id, event.details) == (admin_a.pk, {"reason": "idle"})


def test_absolute_lifetime_of_twelve_hours_despite_activity(admin_a):
    client = Client()
    statuses = []
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        sign_in(client, admin_a)
        for _ in range(12 * 6 + 1):  # a request every 10 minutes, up to 12 h 10 min
            traveller.shift(timedelta(minutes=10))
            statuses.append(client.get(HOME_URL).status_code)
        after = client.get(LOGIN_URL)
    assert statuses == [200] * 72 + [302]
    assert AuditEvent.objects.get(action="auth.session_expired").details == {"reason": "absolute"}
    assert "Your session has expired. Please sign in again." in after.content.decode()


def test_logout_deletes_the_session_on_the_server(admin_a):
    client = Client()
    sign_in(client, admin_a)
    cookie = session_cookie(client)

    response = client.post(LOGOUT_URL)

    assert response.status_code == 302 and response["Location"] == LOGIN_URL
    assert not Session.objects.filter(session_key=cookie).exists()
    replay = Client()
    replay.cookies["sessionid"] = cookie
    assert replay.get(HOME_URL)["Location"].startswith(LOGIN_URL)
    assert actions().count("auth.logout") == 1
    assert AuditEvent.objects.get(action="auth.logout").actor_id == admin_a.pk


def test_logout_needs_post(admin_a, client_for):
    client = client_for(admin_a)
    assert client.get(LOGOUT_URL).status_code == 405
    assert client.get(HOME_URL).status_code == 200
    assert "auth.logout" not in actions()


def test_anonymous_logout_writes_nothing(db):
    response = Client().post(LOGOUT_URL)
    assert response["Location"] == LOGIN_URL
    assert actions() == []


def test_password_only_session_can_log_out(admin_a):
    from .auth_helpers import password_step

    client = Client()
    password_step(client, "a.admin")
    client.post(LOGOUT_URL)
    assert "_auth_user_id" not in client.session.keys()


def test_disabling_a_user_ends_their_sessions_at_once(admin_a):
    client = Client()
    sign_in(client, admin_a)
    admin_a.is_active = False
    admin_a.save(update_fields=["is_active"])
    assert client.get(HOME_URL)["Location"].startswith(LOGIN_URL)


def test_moving_the_session_epoch_ends_their_sessions(admin_a):
    client = Client()
    sign_in(client, admin_a)
    admin_a.session_epoch += 1
    admin_a.save(update_fields=["session_epoch"])
    assert client.get(HOME_URL)["Location"].startswith(LOGIN_URL)


def _session_writes(client, url=HOME_URL) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return sum('UPDATE "django_session"' in q["sql"] for q in captured.captured_queries)


def test_the_activity_stamp_is_written_at_most_once_a_minute(admin_a):
    client = Client()
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        sign_in(client, admin_a)
        traveller.shift(timedelta(seconds=30))
        assert _session_writes(client) == 0
        traveller.shift(timedelta(seconds=31))
        assert _session_writes(client) == 1
        traveller.shift(timedelta(seconds=1))
        assert _session_writes(client) == 0


def test_an_unwritten_request_never_makes_the_idle_limit_longer(admin_a):
    """Activity 50 s after the stamp is not written, so the session ends 15 minutes after the stamp."""
    client = Client()
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        sign_in(client, admin_a)
        traveller.shift(timedelta(seconds=50))
        assert client.get(HOME_URL).status_code == 200
        traveller.shift(timedelta(minutes=14, seconds=11))  # 15 min 1 s after the stamp, 14 min 11 s after use
        response = client.get(HOME_URL)
    assert response.status_code == 302 and response["Location"] == LOGIN_URL
