"""Helpers shared by the sign-in tests: the two steps through the real views, the codes sent."""

from __future__ import annotations

import re

import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse

from portal.accounts.models import SmsMessage
from portal.accounts.services import user_enable
from portal.audit.models import AuditEvent
from tests.factories import PASSWORD

LOGIN_URL = reverse("accounts:login")
VERIFY_URL = reverse("accounts:verify")
RESEND_URL = reverse("accounts:resend")
HOME_URL = reverse("core:home")


def password_step(client: Client, username: str, password: str = PASSWORD, ip: str = "10.0.0.1", **extra):
    return client.post(LOGIN_URL, {"username": username, "password": password, **extra}, REMOTE_ADDR=ip)


def submit_code(client: Client, code: str, method: str = "sms", ip: str = "10.0.0.1"):
    return client.post(VERIFY_URL, {"otp_token": code, "method": method}, REMOTE_ADDR=ip)


def codes_sent_to(phone: str, purpose: str = "otp_login") -> list[str]:
    """The codes texted to ``phone``, newest first."""
    texts = SmsMessage.objects.filter(phone=phone, purpose=purpose).order_by("-id").values_list("text", flat=True)
    return [re.search(r"\b(\d{6})\b", t).group(1) for t in texts]


def last_code(phone: str, purpose: str = "otp_login") -> str:
    return codes_sent_to(phone, purpose)[0]


def actions() -> list[str]:
    return list(AuditEvent.objects.order_by("sequence").values_list("action", flat=True))


def sign_in(client: Client, user, ip: str = "10.0.0.1"):
    """Both factors through the real views."""
    response = password_step(client, user.username, ip=ip)
    assert response.status_code == 302 and response["Location"] == VERIFY_URL
    return submit_code(client, last_code(user.phone), ip=ip)


def session_cookie(client: Client) -> str:
    return client.cookies["sessionid"].value


def wrong_code(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


def confirm_phone_by_first_sign_in(user) -> None:
    """What a user's first sign-in does to the phone an administrator typed in: the code sent to it
    comes back, and the phone is verified (security check A8)."""
    from portal.accounts import auth_services

    device = auth_services.sms_code_send(user=user, purpose="login", phone=user.phone, challenge="first-sign-in")
    check = auth_services.auth_otp_verify(
        user=user, method="sms", token=device.token, challenge="first-sign-in", ip=None
    )
    assert check.ok and user.phone_verified


def assert_enabling_refused_for_the_phone(actor, user) -> None:
    """Re-enabling ``user`` is refused because another active user has the phone: the message, nothing changed."""
    with pytest.raises(ValidationError) as exc:
        user_enable(actor=actor, user=user)
    assert exc.value.messages == [
        "Another active user has this user's mobile phone number: change the phone number of one of them first."
    ]
    user.refresh_from_db()
    assert user.is_active is False
    assert not AuditEvent.objects.filter(action="user.enable").exists()
