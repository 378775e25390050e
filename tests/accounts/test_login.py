"""The password step: success, failures that all look alike, lockout, and the gate before every page."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import time_machine
from axes.models import AccessAttempt
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from portal.accounts.models import SMSDevice, SmsMessage
from portal.audit.models import AuditEvent
from tests.factories import UserFactory, login_password_only

from .auth_helpers import (
    HOME_URL,
    LOGIN_URL,
    PASSWORD,
    VERIFY_URL,
    actions,
    last_code,
    password_step,
    session_cookie,
    sign_in,
    submit_code,
    wrong_code,
)

pytestmark = pytest.mark.django_db

GENERIC = "Invalid username or password, or the account is locked."


def _body_without_csrf(response) -> str:
    """The page without what differs on every response anyway: the CSRF token and the CSP nonce."""
    body = re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", response.content.decode())
    return re.sub(r'nonce="[^"]+"', "", body)


def test_login_page_is_public_and_has_the_two_fields():
    response = Client().get(LOGIN_URL)
    assert response.status_code == 200
    body = response.content.decode()
    assert 'name="username"' in body and 'name="password"' in body
    assert GENERIC not in body


def test_password_step_rotates_the_session_sends_a_code_and_asks_for_the_second_factor(admin_a):
    client = Client()
    client.get(LOGIN_URL)
    client.cookies["sessionid"] = "anonymous-session-key-before-login"

    response = password_step(client, "a.admin")

    assert response.status_code == 302 and response["Location"] == VERIFY_URL
    assert session_cookie(client) != "anonymous-session-key-before-login"
    assert re.fullmatch(r"\d{6}", last_code(admin_a.phone))
    device = SMSDevice.objects.get(user=admin_a, purpose="login")
    assert device.confirmed and device.phone == admin_a.phone and len(device.challenge) == 64
    assert actions() == ["auth.login_success"]
    assert client.get(HOME_URL)["Location"] == VERIFY_URL


def test_sms_text_uses_the_users_language(merchant_a):
    user = UserFactory(organisation=merchant_a, username="zh.user", language="zh-hans")
    password_step(Client(), "zh.user")
    message = SmsMessage.objects.get(phone=user.phone)
    assert message.purpose == "otp_login"
    assert re.search(r"\d{6}", message.text)


@pytest.mark.parametrize("username,password", [("nobody", "Whatever-2026x"), ("a.admin", "Wrong-pass-2026x")])
def test_failure_is_audited_with_the_attempted_username(admin_a, username, password):
    response = password_step(Client(), username, password)
    assert response.status_code == 200
    assert GENERIC in response.content.decode()
    event = AuditEvent.objects.get()
    assert (event.action, event.actor_repr, event.outcome, event.actor_id) == (
        "auth.login_failure",
        username,
        "failure",
        None,
    )
    assert not SmsMessage.objects.exists()


def test_unknown_user_wrong_password_and_locked_account_answer_alike(admin_a, operator_a):
    for i in range(10):
        password_step(Client(), "a.operator", "Wrong-pass-2026x", ip=f"10.1.0.{i}")

    unknown = password_step(Client(), "nobody", "Wrong-pass-2026x")
    wrong = password_step(Client(), "a.admin", "Wrong-pass-2026x")
    locked = password_step(Client(), "a.operator")  # the right password, but locked

    assert unknown.status_code == wrong.status_code == locked.status_code == 200
    assert _body_without_csrf(unknown) == _body_without_csrf(wrong) == _body_without_csrf(locked)
    assert GENERIC in _body_without_csrf(locked)
    assert "_auth_user_id" not in Client().session.keys()


def test_a_locked_account_costs_one_password_hash_like_an_unknown_user(admin_a, operator_a, monkeypatch):
    """Same timing (security A11): axes refuses a locked username before any backend runs, so the answer would
    come without the expensive hash an unknown user or a wrong password costs, unless the refusal hashes too."""
    from django.contrib.auth.hashers import get_hasher

    for i in range(10):
        password_step(Client(), "a.operator", "Wrong-pass-2026x", ip=f"10.1.1.{i}")
    hasher = type(get_hasher())
    encode = hasher.encode
    calls = []

    def counting(self, password, salt):
        calls.append(password)
        return encode(self, password, salt)

    monkeypatch.setattr(hasher, "encode", counting)
    for username, password in (("nobody", "Wrong-pass-2026x"), ("a.operator", PASSWORD)):
        calls.clear()
        password_step(Client(), username, password)
        assert calls == [password], username


def test_inactive_user_answers_like_a_wrong_password(admin_a):
    admin_a.is_active = False
    admin_a.save()
    wrong = password_step(Client(), "nobody", "Wrong-pass-2026x")
    inactive = password_step(Client(), "a.admin")
    assert _body_without_csrf(inactive) == _body_without_csrf(wrong)


def test_lockout_counts_password_and_code_failures_together_across_ips(admin_a, settings):
    settings.OTP_SMS_THROTTLE_FACTOR = 0  # back-off tested separately; here every code is compared
    start = timezone.now()
    with time_machine.travel(start, tick=False) as traveller:
        for i in range(5):
            password_step(Client(), "a.admin", "Wrong-pass-2026x", ip=f"10.2.0.{i}")
        client = Client()
        password_step(client, "a.admin", ip="10.2.1.1")
        code = last_code(admin_a.phone)
        for i in range(4):
            response = submit_code(client, wrong_code(code), ip=f"10.2.2.{i}")
            assert response.status_code == 200
        assert AccessAttempt.objects.filter(username="a.admin").count() > 0

        # The tenth failure (a code) locks the account and ends the half-open session.
        response = submit_code(client, wrong_code(code), ip="10.2.3.1")
        assert response.status_code == 302 and response["Location"] == LOGIN_URL
        assert "_auth_user_id" not in client.session.keys()
        assert "auth.lockout" in actions()

        blocked = password_step(Client(), "a.admin", ip="10.2.4.1")
        assert blocked.status_code == 200 and GENERIC in blocked.content.decode()

        traveller.shift(timedelta(minutes=29))
        still = password_step(Client(), "a.admin", ip="10.2.4.2")
        assert still.status_code == 200 and GENERIC in still.content.decode()

        traveller.shift(timedelta(minutes=1, seconds=1))
        allowed = password_step(Client(), "a.admin", ip="10.2.4.3")
        assert allowed.status_code == 302 and allowed["Location"] == VERIFY_URL


def test_a_complete_sign_in_resets_the_failure_count(admin_a):
    for i in range(9):
        password_step(Client(), "a.admin", "Wrong-pass-2026x", ip=f"10.3.0.{i}")
    assert sign_in(Client(), admin_a).status_code == 302
    assert not AccessAttempt.objects.filter(username="a.admin").exists()
    password_step(Client(), "a.admin", "Wrong-pass-2026x")
    response = password_step(Client(), "a.admin")
    assert response.status_code == 302


def test_password_only_session_is_sent_to_verify_for_home_and_admin(admin_a, platform_admin):
    platform_admin.is_superuser = True
    platform_admin.save()
    for user in (admin_a, platform_admin):
        client = Client()
        login_password_only(client, user)
        assert client.get(HOME_URL)["Location"] == VERIFY_URL
        assert client.get("/admin/")["Location"] == VERIFY_URL
        assert client.get(reverse("accounts:security"))["Location"] == VERIFY_URL


def test_anonymous_is_sent_to_login(db):
    response = Client().get(HOME_URL)
    assert response.status_code == 302 and response["Location"].startswith(LOGIN_URL)
    assert Client().get("/admin/")["Location"].startswith(LOGIN_URL)


def test_superuser_without_second_factor_cannot_reach_the_admin(platform_admin):
    platform_admin.is_superuser = True
    platform_admin.save()
    client = Client()
    password_step(client, platform_admin.username)
    assert client.get("/admin/")["Location"] == VERIFY_URL
    response = submit_code(client, last_code(platform_admin.phone))
    assert response.status_code == 302
    assert client.get("/admin/").status_code == 200


def test_next_is_followed_after_both_factors_and_foreign_next_is_ignored(admin_a):
    client = Client()
    password_step(client, "a.admin", next="/accounts/security/")
    response = submit_code(client, last_code(admin_a.phone))
    assert response["Location"] == "/accounts/security/"

    other = Client()
    with time_machine.travel(timezone.now() + timedelta(seconds=61)):
        password_step(other, "a.admin", next="https://evil.example/")
        response = submit_code(other, last_code(admin_a.phone))
    assert response["Location"] == HOME_URL


def test_home_shows_the_previous_sign_in_time_and_ip(admin_a):
    first = timezone.now() - timedelta(days=1)
    with time_machine.travel(first, tick=False):
        sign_in(Client(), admin_a, ip="203.0.113.7")
    client = Client()
    sign_in(client, admin_a, ip="198.51.100.9")

    admin_a.refresh_from_db()
    assert admin_a.previous_login_ip == "203.0.113.7"
    assert admin_a.previous_login_at == first
    assert admin_a.last_login_ip == "198.51.100.9"
    body = client.get(HOME_URL).content.decode()
    assert "203.0.113.7" in body
    assert timezone.localtime(first, timezone.get_fixed_timezone(480)).strftime("%Y-%m-%d %H:%M:%S") in body


def test_password_step_alone_does_not_count_as_the_last_sign_in(admin_a):
    sign_in(Client(), admin_a, ip="203.0.113.7")
    admin_a.refresh_from_db()
    completed_at = admin_a.last_login
    with time_machine.travel(timezone.now() + timedelta(hours=1)):
        password_step(Client(), "a.admin", ip="192.0.2.1")
    admin_a.refresh_from_db()
    assert admin_a.last_login == completed_at
    assert admin_a.last_login_ip == "203.0.113.7"


def test_signed_in_user_on_login_page_goes_home(admin_a, client_for):
    assert client_for(admin_a).get(LOGIN_URL)["Location"] == HOME_URL
