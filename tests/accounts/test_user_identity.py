"""One identity per person (security check B1): no generic usernames, no SMS factor shared by two active users."""

from __future__ import annotations

import io

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.urls import reverse
from django.utils import translation

from portal.accounts.models import User
from portal.accounts.services import user_create_managed, user_disable, user_update
from portal.accounts.validators import is_generic_username
from portal.audit.models import AuditEvent
from tests.factories import UserFactory

from .auth_helpers import assert_enabling_refused_for_the_phone, confirm_phone_by_first_sign_in

pytestmark = pytest.mark.django_db

GENERIC_MESSAGE = (
    "The user name “%s” is generic (like admin, test or user) and identifies no one: "
    "choose a name for one person, for example from their own name."
)
PHONE_MESSAGE = (
    "Another active user already has this mobile phone number: each person needs their own phone for sign-in codes."
)


def create(actor, **overrides):
    data = {"organisation": actor.organisation, "username": "li.na", "phone": "", "roles": ["merchant_operator"]}
    data.update(overrides)
    return user_create_managed(actor=actor, **data)


# --- Generic usernames -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "username",
    [
        "admin",
        "Administrator",
        "ROOT",
        "test",
        "guest",
        "user",
        "operator",
        "system",
        "support",
        "demo",
        "admin1",
        "Admin01",
        "admin.01",
        "01-guest",
        "test_user",
        "testuser2",
        "root@1",
        "sa",
        "ops",
        "管理员",
        "测试1",
    ],
)
def test_generic_usernames_are_refused_and_nothing_is_written(admin_a, username):
    before = AuditEvent.objects.count()

    with pytest.raises(ValidationError) as exc:
        create(admin_a, username=username)

    assert exc.value.message_dict == {"username": [GENERIC_MESSAGE % username]}
    assert not User.objects.filter(username=username).exists()
    assert AuditEvent.objects.count() == before


@pytest.mark.parametrize(
    "username",
    ["merchant1.admin", "zhang.wei", "a.operator2", "admin.zhang", "wang.test", "100234", "users", "usa", "auditor"],
)
def test_personal_or_organisation_prefixed_usernames_are_accepted(admin_a, username):
    user, _password = create(admin_a, username=username)
    assert user.username == username


def test_the_create_form_shows_the_refusal_on_the_username(admin_a, client_for):
    response = client_for(admin_a).post(
        reverse("accounts:user_create"),
        {
            "organisation": admin_a.organisation_id,
            "username": "Admin2",
            "roles": ["merchant_operator"],
            "delivery": "show",
        },
    )
    assert response.status_code == 200
    assert response.context["form"].errors["username"] == [GENERIC_MESSAGE % "Admin2"]
    assert not User.objects.filter(username="Admin2").exists()


def test_the_refusal_is_translated(admin_a):
    with translation.override("zh-hans"), pytest.raises(ValidationError) as exc:
        create(admin_a, username="root")
    assert exc.value.message_dict["username"][0].startswith("用户名“root”是通用名称")


def test_demo_accounts_are_not_generic_and_the_demo_seed_still_runs():
    """``seed_demo`` creates its users through ``user_create``, where the rule applies."""
    from portal.accounts.management.commands.seed_demo import USERS

    assert [name for name, *_rest in USERS if is_generic_username(name)] == []

    call_command("seed_demo", stdout=io.StringIO())

    assert sorted(User.objects.values_list("username", flat=True)) == sorted(name for name, *_rest in USERS)


# --- One verified phone per active user --------------------------------------------------------


def test_a_phone_another_active_user_has_is_refused_at_creation(admin_a, admin_b):
    before = AuditEvent.objects.count()

    with pytest.raises(ValidationError) as exc:
        create(admin_a, phone=admin_b.phone)

    assert exc.value.message_dict == {"phone": [PHONE_MESSAGE]}
    assert admin_b.username not in str(exc.value)  # another organisation's user is not named
    assert not User.objects.filter(username="li.na").exists()
    assert AuditEvent.objects.count() == before


def test_the_same_mainland_number_with_country_code_is_the_same_phone(admin_a, operator_a):
    with pytest.raises(ValidationError) as exc:
        create(admin_a, phone=f"+86{operator_a.phone}")
    assert exc.value.message_dict == {"phone": [PHONE_MESSAGE]}


def test_errors_on_username_and_phone_come_together(admin_a, operator_a):
    with pytest.raises(ValidationError) as exc:
        create(admin_a, username="test", phone=operator_a.phone)
    assert set(exc.value.message_dict) == {"username", "phone"}


def test_a_disabled_users_phone_can_be_given_to_someone_else(admin_a, operator_a):
    user_disable(actor=admin_a, user=operator_a)

    user, _password = create(admin_a, phone=operator_a.phone)

    assert (user.phone, user.phone_verified) == (operator_a.phone, False)  # until the first sign-in code
    confirm_phone_by_first_sign_in(user)


def test_changing_the_phone_to_another_active_users_is_refused(admin_a, operator_a, reviewer_a):
    with pytest.raises(ValidationError) as exc:
        user_update(
            actor=admin_a,
            user=operator_a,
            first_name="O",
            last_name="P",
            phone=reviewer_a.phone,
            roles=["merchant_operator"],
        )
    assert exc.value.message_dict == {"phone": [PHONE_MESSAGE]}
    operator_a.refresh_from_db()
    assert operator_a.phone != reviewer_a.phone


def test_an_unchanged_phone_shared_before_the_rule_does_not_block_other_changes(admin_a, operator_a):
    # A second holder of a phone from before the rule: migration 0002 left it unverified.
    legacy = UserFactory(
        organisation=admin_a.organisation, username="a.legacy", phone=operator_a.phone, phone_verified=False
    )

    user_update(
        actor=admin_a, user=legacy, first_name="New", last_name="Name", phone=legacy.phone, roles=["merchant_reviewer"]
    )

    legacy.refresh_from_db()
    assert legacy.first_name == "New"


def test_enabling_is_refused_while_another_active_user_has_the_phone(admin_a, operator_a):
    user_disable(actor=admin_a, user=operator_a)
    newcomer, _password = create(admin_a, phone=operator_a.phone)
    confirm_phone_by_first_sign_in(newcomer)
    operator_a.refresh_from_db()

    assert_enabling_refused_for_the_phone(admin_a, operator_a)


def test_the_edit_form_shows_the_phone_refusal(admin_a, operator_a, reviewer_a, client_for):
    response = client_for(admin_a).post(
        reverse("accounts:user_edit", args=[operator_a.pk]),
        {"first_name": "O", "last_name": "P", "phone": reviewer_a.phone, "roles": ["merchant_operator"]},
    )
    assert response.status_code == 200
    assert response.context["form"].errors["phone"] == [PHONE_MESSAGE]
