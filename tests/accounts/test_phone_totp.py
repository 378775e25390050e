"""Phone change (code to the new phone), authenticator-app enrolment, the security page, language."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from portal.accounts.models import SMSDevice, SmsMessage
from portal.audit.models import AuditEvent
from tests.factories import login_password_only, sms_device_for

from .auth_helpers import LOGIN_URL, VERIFY_URL, actions, last_code, wrong_code

pytestmark = pytest.mark.django_db

PHONE_URL = reverse("accounts:phone_change")
TOTP_URL = reverse("accounts:totp_enrol")
SECURITY_URL = reverse("accounts:security")
NEW_PHONE = "13712345678"


def _token(device):
    return f"{totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits, drift=device.drift):06d}"


def test_phone_change_sends_a_code_to_the_new_phone_and_switches_on_confirmation(admin_a, client_for):
    client = client_for(admin_a)
    sms_device_for(admin_a)
    old_phone = admin_a.phone

    response = client.post(PHONE_URL, {"action": "send", "phone": "137 1234 5678"})
    assert response["Location"] == PHONE_URL
    code = last_code(NEW_PHONE, purpose="otp_phone_change")
    admin_a.refresh_from_db()
    assert admin_a.phone == old_phone

    response = client.post(PHONE_URL, {"action": "confirm", "otp_token": code})

    assert response["Location"] == SECURITY_URL
    admin_a.refresh_from_db()
    assert (admin_a.phone, admin_a.phone_verified) == (NEW_PHONE, True)
    assert SMSDevice.objects.get(user=admin_a, purpose="login").phone == NEW_PHONE
    assert actions() == ["auth.phone_change"]
    assert AuditEvent.objects.get().details == {"old_phone": "139****" + old_phone[-4:], "new_phone": "137****5678"}


def test_phone_change_wrong_code_changes_nothing(admin_a, client_for):
    client = client_for(admin_a)
    old_phone = admin_a.phone
    client.post(PHONE_URL, {"action": "send", "phone": NEW_PHONE})
    code = last_code(NEW_PHONE, purpose="otp_phone_change")

    response = client.post(PHONE_URL, {"action": "confirm", "otp_token": wrong_code(code)})

    assert response.status_code == 200
    admin_a.refresh_from_db()
    assert admin_a.phone == old_phone
    assert actions() == ["auth.otp_failure"]


def test_phone_change_refuses_an_invalid_or_identical_number(admin_a, client_for):
    client = client_for(admin_a)
    assert client.post(PHONE_URL, {"action": "send", "phone": "12ab"}).status_code == 200
    response = client.post(PHONE_URL, {"action": "send", "phone": admin_a.phone})
    assert "This is already your phone number." in response.content.decode()
    assert not SmsMessage.objects.exists()


def test_phone_change_refuses_a_phone_another_active_user_signs_in_with(admin_a, operator_a, client_for):
    # given another active user whose verified phone is the new number
    operator_a.phone, operator_a.phone_verified = NEW_PHONE, True
    operator_a.save(update_fields=["phone", "phone_verified"])
    client = client_for(admin_a)
    # when admin A asks to move to that phone, then no code is sent and the form says why (security B1)
    response = client.post(PHONE_URL, {"action": "send", "phone": NEW_PHONE})
    assert response.status_code == 200
    assert "Another active user already has this mobile phone number" in response.content.decode()
    assert not SmsMessage.objects.filter(phone=NEW_PHONE).exists()


def test_phone_taken_between_the_code_and_its_confirmation_is_not_switched(admin_a, operator_a, client_for):
    # given a code sent to a free phone, which another user then verifies as theirs
    client = client_for(admin_a)
    old_phone = admin_a.phone
    client.post(PHONE_URL, {"action": "send", "phone": NEW_PHONE})
    code = last_code(NEW_PHONE, purpose="otp_phone_change")
    operator_a.phone, operator_a.phone_verified = NEW_PHONE, True
    operator_a.save(update_fields=["phone", "phone_verified"])
    # when admin A confirms the right code
    response = client.post(PHONE_URL, {"action": "confirm", "otp_token": code}, follow=True)
    # then the phone stays as it was, the user is told why, and it counts as no failed code
    admin_a.refresh_from_db()
    assert admin_a.phone == old_phone
    assert "Another active user already has this mobile phone number" in response.content.decode()
    assert "auth.phone_change" not in actions() and "auth.otp_failure" not in actions()


def test_totp_enrolment_shows_a_qr_code_and_confirms_with_a_code(admin_a, client_for):
    client = client_for(admin_a)
    page = client.get(TOTP_URL)
    body = page.content.decode()
    assert page.status_code == 200
    assert 'src="data:image/svg+xml' in body
    device = TOTPDevice.objects.get(user=admin_a)
    assert device.confirmed is False
    assert 'data-testid="totp-secret"' in body

    response = client.post(TOTP_URL, {"otp_token": _token(device)})

    assert response["Location"] == SECURITY_URL
    device.refresh_from_db()
    assert device.confirmed is True
    assert actions() == ["auth.device_enrol"]
    assert "Authenticator app" in client.get(SECURITY_URL).content.decode()


def test_totp_enrolment_wrong_code_leaves_the_device_unconfirmed(admin_a, client_for):
    client = client_for(admin_a)
    client.get(TOTP_URL)
    device = TOTPDevice.objects.get(user=admin_a)
    response = client.post(TOTP_URL, {"otp_token": wrong_code(_token(device))})
    assert response.status_code == 200
    device.refresh_from_db()
    assert device.confirmed is False
    assert actions() == ["auth.otp_failure"]


def test_new_enrolment_replaces_the_old_app(admin_a, client_for):
    old = TOTPDevice.objects.create(user=admin_a, name="old", confirmed=True)
    client = client_for(admin_a)
    client.get(TOTP_URL)
    new = TOTPDevice.objects.get(user=admin_a, confirmed=False)
    client.post(TOTP_URL, {"otp_token": _token(new)})
    assert list(TOTPDevice.objects.filter(user=admin_a).values_list("pk", flat=True)) == [new.pk]
    assert not TOTPDevice.objects.filter(pk=old.pk).exists()


def test_security_page_shows_the_masked_phone(admin_a, client_for):
    sms_device_for(admin_a)
    body = client_for(admin_a).get(SECURITY_URL).content.decode()
    assert admin_a.masked_phone in body and admin_a.phone not in body
    assert PHONE_URL in body and TOTP_URL in body and reverse("accounts:password_change") in body


@pytest.mark.parametrize("url", [SECURITY_URL, PHONE_URL, TOTP_URL])
def test_pages_need_both_factors(admin_a, url):
    assert Client().get(url)["Location"].startswith(LOGIN_URL)
    client = Client()
    login_password_only(client, admin_a)
    assert client.get(url)["Location"] == VERIFY_URL
    assert not TOTPDevice.objects.exists()


def test_language_choice_is_remembered_on_the_account(admin_a, client_for):
    client = client_for(admin_a)
    client.post(reverse("set_language"), {"language": "zh-hans", "next": "/"})
    admin_a.refresh_from_db()
    assert admin_a.language == "zh-hans"
    assert client.get(SECURITY_URL)["Content-Language"] == "zh-hans"


def test_language_switch_is_public(db):
    response = Client().post(reverse("set_language"), {"language": "zh-hans", "next": "/accounts/login/"})
    assert response.status_code == 302 and response["Location"] == "/accounts/login/"
