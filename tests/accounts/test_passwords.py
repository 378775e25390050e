"""Password rules (length, letter and digit, common, history, Argon2) and the password-change page."""

from __future__ import annotations

import pytest
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse

from portal.accounts.services import user_set_password
from portal.audit.models import AuditEvent
from tests.factories import PASSWORD, login_password_only

from .auth_helpers import HOME_URL, LOGIN_URL, VERIFY_URL, actions, sign_in

pytestmark = pytest.mark.django_db

CHANGE_URL = reverse("accounts:password_change")


def _codes(password, user) -> set[str]:
    try:
        validate_password(password, user)
    except ValidationError as exc:
        return {e.code for e in exc.error_list}
    return set()


def test_password_rules(admin_a):
    assert _codes("Abcdefghij1", admin_a) == {"password_too_short"}  # 11 characters
    assert _codes("Abcdefghijkl", admin_a) == {"password_letter_digit"}
    assert _codes("123456789012", admin_a) >= {"password_letter_digit"}
    assert "password_too_common" in _codes("password1234", admin_a)
    assert _codes("Abcdefghijk1", admin_a) == set()
    assert _codes("correct horse battery staple 42 " * 2, admin_a) == set()  # 64 characters, spaces


def test_last_four_passwords_cannot_be_reused_and_the_fifth_oldest_can(admin_a):
    history = [f"Rotating-pass-{i}x2026" for i in range(5)]
    for password in history:
        user_set_password(actor=admin_a, user=admin_a, raw_password=password, must_change=False)
    for recent in history[1:]:
        assert _codes(recent, admin_a) == {"password_reused"}
    assert _codes(history[0], admin_a) == set()


def test_passwords_are_stored_with_argon2(admin_a):
    user_set_password(actor=admin_a, user=admin_a, raw_password="Brand-new-pass-2026", must_change=False)
    admin_a.refresh_from_db()
    assert admin_a.password.startswith("argon2$argon2id$")


def test_change_password_keeps_this_session_and_ends_the_others(admin_a, client_for):
    client = client_for(admin_a)
    other = client_for(admin_a)

    response = client.post(
        CHANGE_URL,
        {"current_password": PASSWORD, "new_password1": "Fresh-pass-2026x", "new_password2": "Fresh-pass-2026x"},
    )

    assert response.status_code == 302 and response["Location"] == HOME_URL
    assert client.get(HOME_URL).status_code == 200
    assert other.get(HOME_URL)["Location"].startswith(LOGIN_URL)
    admin_a.refresh_from_db()
    assert admin_a.check_password("Fresh-pass-2026x")
    assert actions() == ["auth.password_change"]
    assert AuditEvent.objects.get().actor_id == admin_a.pk


@pytest.mark.parametrize(
    "data,error",
    [
        (
            {
                "current_password": "Wrong-pass-2026x",
                "new_password1": "Fresh-pass-2026x",
                "new_password2": "Fresh-pass-2026x",
            },
            "Your current password is not correct.",
        ),
        (
            {"current_password": PASSWORD, "new_password1": "Fresh-pass-2026x", "new_password2": "Other-pass-2026x"},
            "The two new passwords differ.",
        ),
        (
            {"current_password": PASSWORD, "new_password1": "short1a", "new_password2": "short1a"},
            "This password is too short.",
        ),
    ],
)
def test_change_password_refusals_change_nothing(admin_a, client_for, data, error):
    client = client_for(admin_a)
    response = client.post(CHANGE_URL, data)
    assert response.status_code == 200
    assert error in response.content.decode()
    admin_a.refresh_from_db()
    assert admin_a.check_password(PASSWORD)
    assert actions() == []


def test_forced_change_redirects_every_page_to_the_change_page(admin_a, client_for):
    admin_a.must_change_password = True
    admin_a.save()
    client = client_for(admin_a)
    for url in (HOME_URL, reverse("accounts:security"), "/admin/", reverse("accounts:totp_enrol")):
        assert client.get(url)["Location"] == CHANGE_URL
    assert client.get(CHANGE_URL).status_code == 200

    client.post(
        CHANGE_URL,
        {"current_password": PASSWORD, "new_password1": "Fresh-pass-2026x", "new_password2": "Fresh-pass-2026x"},
    )
    admin_a.refresh_from_db()
    assert admin_a.must_change_password is False
    assert client.get(HOME_URL).status_code == 200


def test_change_page_needs_both_factors(admin_a):
    assert Client().get(CHANGE_URL)["Location"].startswith(LOGIN_URL)
    client = Client()
    login_password_only(client, admin_a)
    assert client.get(CHANGE_URL)["Location"] == VERIFY_URL
    client.post(
        CHANGE_URL,
        {"current_password": PASSWORD, "new_password1": "Fresh-pass-2026x", "new_password2": "Fresh-pass-2026x"},
    )
    admin_a.refresh_from_db()
    assert admin_a.check_password(PASSWORD)


def test_old_pbkdf2_hash_is_upgraded_at_sign_in(admin_a):
    from django.contrib.auth.hashers import make_password

    admin_a.password = make_password(PASSWORD, hasher="pbkdf2_sha256")
    admin_a.save()
    sign_in(Client(), admin_a)
    admin_a.refresh_from_db()
    assert admin_a.password.startswith("argon2$argon2id$")
