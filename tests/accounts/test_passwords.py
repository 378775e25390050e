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


# --- Context words (security check A13) ------------------------------------------------------


@pytest.fixture
def lotus_admin(merchant_a):
    """Merchant A, renamed so that its names are recognisable, and its administrator ``a.admin``."""
    from portal.accounts.models import User

    merchant_a.name_en = "Golden Lotus Trading"
    merchant_a.name_zh = "金莲贸易有限公司"
    merchant_a.save()
    from tests.factories import UserFactory

    user = UserFactory(organisation=merchant_a, username="a.admin", roles=["merchant_admin"])
    return User.objects.select_related("organisation").get(pk=user.pk)


def test_the_context_word_validator_is_configured():
    from django.contrib.auth.password_validation import get_default_password_validators

    from portal.accounts.validators import ContextWordsValidator

    assert any(isinstance(v, ContextWordsValidator) for v in get_default_password_validators())


@pytest.mark.parametrize(
    "password",
    [
        "Xq7-ADMIN-2026z",  # a part of the username, any case
        "Xq7 a.admin 2026z",  # the username
        "Golden Lotus Trading 7x",  # the English name, spaces kept
        "goldenlotustrading7x",  # ... or dropped
        "GoldenLotus-2026x",  # two consecutive words of the name
        "Lotus_Trading_2026x",
        "金莲贸易有限公司2026x",  # the Chinese name
        "金莲贸易-2026abcd",  # ... without its legal form
        "Merchant-2026-xyz",  # product words
        "ACQUIRER-2026-xyz",
        "my portal 2026xy",
        "UnionPay2026xyz",
        "U-n-i-o-n-P-a-y-26x",  # punctuation does not hide a word
        "银联密码2026abcd",
        "商户密码2026abcd",
        "ＭＥＲＣＨＡＮＴ2026xyz",  # full-width letters
    ],
)
def test_passwords_with_context_words_are_refused(lotus_admin, password):
    assert _codes(password, lotus_admin) == {"password_context_word"}


def test_the_organisation_code_is_refused(lotus_admin):
    assert _codes(f"Pw{lotus_admin.organisation.code}x", lotus_admin) == {"password_context_word"}


@pytest.mark.parametrize(
    "password",
    [
        "Golden-pass-2026x",  # one word of a multi-word name alone is allowed (common words)
        "Lotus-pass-2026xy",
        "Xa-pass-2026-zz",  # the username's one-letter part "a" is too short to count
        "Adxmin-2026-zzq",  # a word broken by a letter (punctuation alone would not break it)
    ],
)
def test_passwords_without_context_words_pass(lotus_admin, password):
    assert _codes(password, lotus_admin) == set()


def test_refusal_names_the_word_and_is_translated(lotus_admin):
    from django.utils import translation

    with pytest.raises(ValidationError) as exc:
        validate_password("GoldenLotus-2026x", lotus_admin)
    assert exc.value.messages == [
        "Your password must not contain “goldenlotus”: leave out your user name, your organisation's code and name, "
        "and product words such as “merchant” or “UnionPay”."
    ]
    with translation.override("zh-hans"), pytest.raises(ValidationError) as exc:
        validate_password("GoldenLotus-2026x", lotus_admin)
    assert exc.value.messages[0].startswith("密码不能包含“goldenlotus”")


def test_single_name_words_can_be_switched_on(lotus_admin):
    from portal.accounts.validators import ContextWordsValidator

    ContextWordsValidator().validate("Golden-pass-2026x", lotus_admin)
    with pytest.raises(ValidationError):
        ContextWordsValidator(single_name_words=True).validate("Golden-pass-2026x", lotus_admin)


def test_without_a_user_only_product_words_count():
    assert _codes("Golden-Lotus-2026x", None) == set()
    assert _codes("Golden-UnionPay-2026x", None) == {"password_context_word"}


def test_the_demo_password_passes_for_every_demo_account():
    """``seed_demo`` sets ``Demo-pass-2026`` through ``user_create``: the rule must accept it."""
    from portal.accounts.management.commands.seed_demo import ACQUIRER, DEMO_PASSWORD, MERCHANTS, PLATFORM, USERS
    from portal.accounts.models import Organisation, User

    orgs = {data["code"]: Organisation(**data) for data in [ACQUIRER, PLATFORM, *MERCHANTS]}
    for username, code, *_rest in USERS:
        user = User(username=username, organisation=orgs[code])
        assert _codes(DEMO_PASSWORD, user) == set(), username


def test_change_password_page_refuses_a_context_word(admin_a, client_for):
    client = client_for(admin_a)
    response = client.post(
        CHANGE_URL,
        {"current_password": PASSWORD, "new_password1": "Unionpay-2026-xq", "new_password2": "Unionpay-2026-xq"},
    )
    assert response.status_code == 200
    assert "Your password must not contain “unionpay”" in response.content.decode()
    admin_a.refresh_from_db()
    assert admin_a.check_password(PASSWORD)
    assert actions() == []


def test_generated_passwords_are_drawn_again_when_they_hold_a_context_word(admin_a, operator_a, monkeypatch):
    """Create and reset use a random password; one that happens to hold a context word is not used."""
    from portal.accounts import services

    clean = ["Qz8Rw7Et6Yu5Io4P", "Kx2Lc3Vb4Nm5Aq6W"]
    drawn = iter([f"Ab1{admin_a.organisation.code}", clean[0], "Zz9operatorZz9zz", clean[1]])
    monkeypatch.setattr(services, "generate_initial_password", lambda: next(drawn))

    user, shown = services.user_create_managed(
        actor=admin_a, organisation=admin_a.organisation, username="li.na", roles=["merchant_operator"]
    )
    assert shown == clean[0] and user.check_password(clean[0])

    assert services.user_reset_password(actor=admin_a, user=operator_a) == clean[1]
    operator_a.refresh_from_db()
    assert operator_a.check_password(clean[1])
