"""Step-up: the mixin in front of sensitive views, the step-up page and the API helper."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
import time_machine
from axes.models import AccessAttempt
from django.test import Client, RequestFactory
from django.urls import reverse
from django.utils import timezone
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from portal.accounts.models import SmsMessage
from portal.accounts.stepup import SESSION_OTP_VERIFIED_AT, step_up_is_fresh, verify_step_up_token
from portal.audit.models import AuditEvent
from tests.factories import login_password_only

from .auth_helpers import LOGIN_URL, VERIFY_URL, actions, last_code, wrong_code

pytestmark = pytest.mark.django_db

STEP_UP_URL = reverse("accounts:step_up")
PHONE_URL = reverse("accounts:phone_change")


def _stale(client):
    session = client.session
    session[SESSION_OTP_VERIFIED_AT] = time.time() - 301
    session.save()


def test_fresh_within_five_minutes_only(rf):
    request = rf.get("/")
    request.session = {SESSION_OTP_VERIFIED_AT: time.time() - 299}
    assert step_up_is_fresh(request)
    request.session = {SESSION_OTP_VERIFIED_AT: time.time() - 301}
    assert not step_up_is_fresh(request)
    request.session = {}
    assert not step_up_is_fresh(request)


def test_stale_get_goes_to_step_up_and_comes_back(admin_a, client_for):
    client = client_for(admin_a)
    _stale(client)
    response = client.get(PHONE_URL)
    assert response.status_code == 302
    assert response["Location"] == f"{STEP_UP_URL}?next=%2Faccounts%2Fsecurity%2Fphone%2F"


def test_stale_post_does_nothing_and_asks_for_a_code(admin_a, client_for):
    client = client_for(admin_a)
    _stale(client)
    response = client.post(PHONE_URL, {"action": "send", "phone": "13700000000"}, follow=True)
    assert "Confirm with a code first." in response.content.decode()
    assert not SmsMessage.objects.filter(phone="13700000000").exists()
    assert actions() == []


def test_step_up_page_sends_a_code_and_a_right_code_goes_back_to_next(admin_a, client_for):
    client = client_for(admin_a)
    _stale(client)
    page = client.get(STEP_UP_URL, {"next": PHONE_URL})
    assert page.status_code == 200
    code = last_code(admin_a.phone, purpose="otp_step_up")

    response = client.post(STEP_UP_URL, {"otp_token": code, "method": "sms", "next": PHONE_URL})

    assert response.status_code == 302 and response["Location"] == PHONE_URL
    assert client.get(PHONE_URL).status_code == 200
    assert actions() == ["auth.step_up"]
    assert AuditEvent.objects.get().details == {"method": "sms"}


def test_step_up_wrong_code_counts_toward_the_lockout(admin_a, client_for):
    client = client_for(admin_a)
    _stale(client)
    client.get(STEP_UP_URL, {"next": PHONE_URL})
    code = last_code(admin_a.phone, purpose="otp_step_up")

    response = client.post(STEP_UP_URL, {"otp_token": wrong_code(code), "method": "sms", "next": PHONE_URL})

    assert response.status_code == 200
    assert "This code is not valid or has expired." in response.content.decode()
    assert actions() == ["auth.otp_failure"]
    assert AccessAttempt.objects.get(username="a.admin").failures_since_start == 1
    assert client.get(PHONE_URL)["Location"].startswith(STEP_UP_URL)


def test_step_up_ignores_a_foreign_next(admin_a, client_for):
    client = client_for(admin_a)
    client.get(STEP_UP_URL)
    code = last_code(admin_a.phone, purpose="otp_step_up")
    response = client.post(STEP_UP_URL, {"otp_token": code, "method": "sms", "next": "https://evil.example/"})
    assert response["Location"] == reverse("accounts:security")


def test_step_up_code_expires_after_five_minutes(admin_a, client_for):
    client = client_for(admin_a)
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        client.get(STEP_UP_URL)
        code = last_code(admin_a.phone, purpose="otp_step_up")
        traveller.shift(timedelta(seconds=301))
        response = client.post(STEP_UP_URL, {"otp_token": code, "method": "sms"})
    assert response.status_code == 200
    assert actions() == ["auth.otp_failure"]


def test_step_up_page_needs_both_factors(admin_a):
    assert Client().get(STEP_UP_URL)["Location"].startswith(LOGIN_URL)
    client = Client()
    login_password_only(client, admin_a)
    assert client.get(STEP_UP_URL)["Location"] == VERIFY_URL
    assert not SmsMessage.objects.exists()


def _api_request(client, user):
    request = RequestFactory().post("/api/x/", REMOTE_ADDR="10.0.0.5")
    request.session = client.session
    request.user = user
    return request


def test_verify_step_up_token_with_an_authenticator_app(admin_a, client_for):
    device = TOTPDevice.objects.create(user=admin_a, name="app", confirmed=True)
    client = client_for(admin_a)
    request = _api_request(client, admin_a)
    request.session[SESSION_OTP_VERIFIED_AT] = time.time() - 301

    token = f"{totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits, drift=device.drift):06d}"
    assert verify_step_up_token(request, admin_a, token) is True
    assert step_up_is_fresh(request)
    assert actions() == ["auth.step_up"]


def test_verify_step_up_token_refuses_a_wrong_code(admin_a, client_for):
    TOTPDevice.objects.create(user=admin_a, name="app", confirmed=True)
    client = client_for(admin_a)
    request = _api_request(client, admin_a)
    request.session[SESSION_OTP_VERIFIED_AT] = time.time() - 301

    assert verify_step_up_token(request, admin_a, "000000x") is False
    assert not step_up_is_fresh(request)
    assert actions() == ["auth.otp_failure"]
    assert AccessAttempt.objects.get(username="a.admin").failures_since_start == 1
