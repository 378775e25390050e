"""The second factor: lifetime, single use, binding to the session, resend cooldown, daily cap,
back-off, authenticator app, session rotation and the forced password change."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from axes.models import AccessAttempt
from django.core.cache import cache
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from portal.accounts import auth_services
from portal.accounts.models import SMSDevice, SmsMessage
from portal.audit.models import AuditEvent

from .auth_helpers import (
    HOME_URL,
    LOGIN_URL,
    RESEND_URL,
    VERIFY_URL,
    actions,
    codes_sent_to,
    last_code,
    password_step,
    session_cookie,
    submit_code,
    wrong_code,
)

pytestmark = pytest.mark.django_db


def _totp_token(device: TOTPDevice) -> str:
    return f"{totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits, drift=device.drift):06d}"


@pytest.mark.parametrize("seconds,accepted", [(299, True), (301, False)])
def test_code_is_valid_for_five_minutes(admin_a, seconds, accepted):
    start = timezone.now()
    client = Client()
    with time_machine.travel(start, tick=False) as traveller:
        password_step(client, "a.admin")
        code = last_code(admin_a.phone)
        traveller.shift(timedelta(seconds=seconds))
        response = submit_code(client, code)
    if accepted:
        assert response.status_code == 302 and response["Location"] == HOME_URL
        assert actions()[-1] == "auth.otp_success"
    else:
        assert response.status_code == 200
        assert "This code is not valid or has expired." in response.content.decode()
        assert actions()[-1] == "auth.otp_failure"


def test_success_rotates_the_session_key_and_the_old_cookie_is_rejected(admin_a):
    client = Client()
    password_step(client, "a.admin")
    after_password = session_cookie(client)

    response = submit_code(client, last_code(admin_a.phone))

    assert response.status_code == 302 and response["Location"] == HOME_URL
    after_code = session_cookie(client)
    assert after_code != after_password
    assert client.get(HOME_URL).status_code == 200
    replay = Client()
    replay.cookies["sessionid"] = after_password
    assert replay.get(HOME_URL)["Location"].startswith(LOGIN_URL)
    assert actions() == ["auth.login_success", "auth.otp_success"]
    event = AuditEvent.objects.get(action="auth.otp_success")
    assert (event.actor_id, event.outcome, event.details) == (admin_a.pk, "success", {"method": "sms"})


def test_code_is_single_use(admin_a):
    client = Client()
    password_step(client, "a.admin")
    code = last_code(admin_a.phone)
    challenge = client.session["portal_otp_challenge"]

    first = auth_services.auth_otp_verify(user=admin_a, method="sms", token=code, challenge=challenge, ip=None)
    second = auth_services.auth_otp_verify(user=admin_a, method="sms", token=code, challenge=challenge, ip=None)

    assert (first.ok, second.ok) == (True, False)
    assert SMSDevice.objects.get(user=admin_a, purpose="login").token is None


def test_code_requested_in_session_a_is_refused_in_session_b(admin_a):
    session_a, session_b = Client(), Client()
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        password_step(session_a, "a.admin")
        code = last_code(admin_a.phone)
        password_step(session_b, "a.admin")  # within the cooldown: no new code

        refused = submit_code(session_b, code)
        assert refused.status_code == 200
        assert "This code is not valid or has expired." in refused.content.decode()
        assert codes_sent_to(admin_a.phone) == [code]

        traveller.shift(timedelta(seconds=2))  # past the one-second back-off
        accepted = submit_code(session_a, code)
    assert accepted.status_code == 302 and accepted["Location"] == HOME_URL


def test_wrong_code_is_audited_and_counted_toward_the_lockout(admin_a):
    client = Client()
    password_step(client, "a.admin")
    response = submit_code(client, wrong_code(last_code(admin_a.phone)))

    assert response.status_code == 200
    event = AuditEvent.objects.get(action="auth.otp_failure")
    assert (event.actor_id, event.outcome) == (admin_a.pk, "failure")
    assert event.details == {"method": "sms", "purpose": "login", "throttled": False}
    assert AccessAttempt.objects.get(username="a.admin").failures_since_start == 1
    assert not client.session.get("otp_device_id")


def test_back_off_after_a_wrong_code_is_not_counted_again(admin_a):
    start = timezone.now()
    client = Client()
    with time_machine.travel(start, tick=False) as traveller:
        password_step(client, "a.admin")
        code = last_code(admin_a.phone)
        submit_code(client, wrong_code(code))
        traveller.shift(timedelta(seconds=1.5))
        submit_code(client, wrong_code(code))
        throttled = submit_code(client, code)  # 2 s back-off after the second failure
        assert "Too many wrong codes." in throttled.content.decode()
        assert AccessAttempt.objects.get(username="a.admin").failures_since_start == 2
        traveller.shift(timedelta(seconds=3))
        assert submit_code(client, code)["Location"] == HOME_URL


def test_two_resends_within_sixty_seconds_send_one_new_code(admin_a):
    start = timezone.now()
    client = Client()
    with time_machine.travel(start, tick=False) as traveller:
        password_step(client, "a.admin")
        first_code = last_code(admin_a.phone)
        traveller.shift(timedelta(seconds=61))
        client.post(RESEND_URL)
        response = client.post(RESEND_URL, follow=True)
        assert "A code was sent less than a minute ago." in response.content.decode()
        assert SmsMessage.objects.filter(phone=admin_a.phone).count() == 2

        new_code = last_code(admin_a.phone)
        assert submit_code(client, first_code).status_code == 200  # the resend replaced it
        traveller.shift(timedelta(seconds=5))
        assert submit_code(client, new_code)["Location"] == HOME_URL


def test_daily_cap_per_phone(admin_a, settings):
    settings.SMS_DAILY_CAP = 2
    start = timezone.now()
    client = Client()
    with time_machine.travel(start, tick=False) as traveller:
        password_step(client, "a.admin")
        traveller.shift(timedelta(seconds=61))
        client.post(RESEND_URL)
        traveller.shift(timedelta(seconds=61))
        response = client.post(RESEND_URL, follow=True)
    assert "Too many text messages were sent to this phone today." in response.content.decode()
    assert SmsMessage.objects.filter(phone=admin_a.phone).count() == 2


def test_daily_cap_per_client_ip_across_phones(admin_a, operator_a, reviewer_a, settings):
    """Security A7: one address cannot make the portal text many phones (SMS bombing, cost abuse)."""
    settings.SMS_DAILY_CAP_PER_IP = 2
    cache.clear()
    password_step(Client(), "a.admin", ip="10.9.0.1")
    password_step(Client(), "a.operator", ip="10.9.0.1")
    # a third sign-in from the same address is refused its code, with a message that says why
    client = Client()
    response = password_step(client, reviewer_a.username, ip="10.9.0.1")
    page = client.get(response["Location"]).content.decode() if response.status_code == 302 else ""
    assert "Too many text messages were requested from your network today." in page
    assert SmsMessage.objects.count() == 2
    # another address still gets its code
    password_step(Client(), reviewer_a.username, ip="10.9.0.2")
    assert SmsMessage.objects.count() == 3


def test_verify_page_shows_masked_phone_and_resend(admin_a):
    client = Client()
    password_step(client, "a.admin")
    body = client.get(VERIFY_URL).content.decode()
    assert admin_a.masked_phone in body and admin_a.phone not in body
    assert 'name="otp_token"' in body and RESEND_URL in body


def test_authenticator_app_code_completes_the_sign_in(admin_a):
    device = TOTPDevice.objects.create(user=admin_a, name="app", confirmed=True)
    client = Client()
    password_step(client, "a.admin")
    body = client.get(VERIFY_URL).content.decode()
    assert 'value="totp"' in body and 'value="sms"' in body

    response = submit_code(client, _totp_token(device), method="totp")

    assert response["Location"] == HOME_URL
    assert AuditEvent.objects.get(action="auth.otp_success").details == {"method": "totp"}
    # The same time step is never accepted twice.
    again = auth_services.auth_otp_verify(user=admin_a, method="totp", token=_totp_token(device), challenge="", ip=None)
    assert again.ok is False


def test_no_device_means_no_way_in(merchant_a):
    from tests.factories import UserFactory

    user = UserFactory(organisation=merchant_a, username="nophone", phone="", phone_verified=False)
    client = Client()
    password_step(client, "nophone")
    assert 'data-testid="no-device"' in client.get(VERIFY_URL).content.decode()
    assert submit_code(client, "123456").status_code == 200
    assert client.get(HOME_URL)["Location"] == VERIFY_URL
    assert not SMSDevice.objects.filter(user=user).exists()


def test_forced_password_change_comes_right_after_the_second_factor(admin_a):
    admin_a.must_change_password = True
    admin_a.save()
    client = Client()
    password_step(client, "a.admin")
    response = submit_code(client, last_code(admin_a.phone))
    assert response["Location"] == reverse("accounts:password_change")


def test_verify_and_resend_need_the_password_step(db):
    assert Client().get(VERIFY_URL)["Location"].startswith(LOGIN_URL)
    assert Client().post(RESEND_URL)["Location"].startswith(LOGIN_URL)


def test_verified_user_on_verify_goes_home(admin_a, client_for):
    assert client_for(admin_a).get(VERIFY_URL)["Location"] == HOME_URL


def test_locked_user_with_half_open_session_is_signed_out_on_verify(admin_a):
    client = Client()
    password_step(client, "a.admin")
    for i in range(10):
        password_step(Client(), "a.admin", "Wrong-pass-2026x", ip=f"10.9.0.{i}")
    response = client.get(VERIFY_URL)
    assert response["Location"] == LOGIN_URL
    assert "_auth_user_id" not in client.session.keys()
