"""User management: list, create, edit, disable / enable, unlock, reset password (UI and services)."""

from __future__ import annotations

import time

import pytest
from axes.handlers.proxy import AxesProxyHandler
from axes.models import AccessAttempt
from django.conf import settings
from django.contrib.auth.signals import user_login_failed
from django.contrib.messages import get_messages
from django.contrib.sessions.models import Session
from django.core.exceptions import ValidationError
from django.test import Client, RequestFactory
from django.urls import reverse

from portal.accounts.models import SmsMessage, User
from portal.accounts.roles import Role
from portal.accounts.services import (
    generate_initial_password,
    grantable_roles,
    user_disable,
    user_update,
    users_manageable_by,
)
from portal.audit.models import AuditEvent
from tests.factories import UserFactory, login_password_only, sms_device_for

pytestmark = pytest.mark.django_db

ACTIONS = ["user_edit", "user_disable", "user_enable", "user_unlock", "user_reset_password"]


def url(name: str, user: User | None = None) -> str:
    return reverse(f"accounts:{name}", args=[user.pk] if user else [])


def audit_count(action: str | None = None) -> int:
    qs = AuditEvent.objects.all()
    return qs.filter(action=action).count() if action else qs.count()


def make_stale(client: Client) -> None:
    session = client.session
    session["portal_otp_verified_at"] = time.time() - 600
    session.save()


def lock_out(username: str) -> None:
    """Feed AXES_FAILURE_LIMIT failed sign-ins for ``username`` through django-axes."""
    for _ in range(settings.AXES_FAILURE_LIMIT):
        request = RequestFactory().post("/accounts/login/", REMOTE_ADDR="10.1.2.3", HTTP_USER_AGENT="pytest")
        AxesProxyHandler.update_request(request)
        user_login_failed.send(sender=__name__, credentials={"username": username}, request=request)


def axes_locked(username: str) -> bool:
    request = RequestFactory().post("/accounts/login/", REMOTE_ADDR="10.9.9.9", HTTP_USER_AGENT="other")
    AxesProxyHandler.update_request(request)
    return AxesProxyHandler.is_locked(request, {"username": username})


def create_payload(org, **overrides):
    data = {
        "organisation": org.pk,
        "username": "a.new",
        "first_name": "Li",
        "last_name": "Na",
        "email": "",
        "phone": "13700000999",  # outside the factories' 139… numbers: a phone is one active user's only
        "roles": ["merchant_operator"],
        "delivery": "show",
    }
    data.update(overrides)
    return data


# --- Create ---------------------------------------------------------------------------------


def test_merchant_admin_creates_user_and_sees_password_once(admin_a, merchant_a, client_for):
    client = client_for(admin_a)

    assert client.get(url("user_create")).status_code == 200
    response = client.post(url("user_create"), create_payload(merchant_a))

    assert response.status_code == 200
    assert "no-store" in response.headers["Cache-Control"]
    password = response.context["password"]
    assert len(password) == 16
    assert password in response.content.decode()
    user = User.objects.get(username="a.new")
    assert user.organisation == merchant_a
    assert user.check_password(password)
    assert user.must_change_password is True
    assert user.phone_verified is False  # the user's first sign-in code confirms it (security A8)
    assert user.created_by == admin_a
    assert set(user.role_codes) == {"merchant_operator"}
    assert audit_count("user.create") == 1
    event = AuditEvent.objects.get(action="user.create")
    assert event.actor == admin_a
    assert event.object_id == str(user.pk)
    assert password not in str(event.details)
    # Shown once: the detail page does not repeat it.
    assert password not in client.get(url("user_detail", user)).content.decode()


def test_created_user_must_change_password_at_first_sign_in(admin_a, merchant_a, client_for):
    client_for(admin_a).post(url("user_create"), create_payload(merchant_a))
    new_user = User.objects.get(username="a.new")

    response = client_for(new_user).get("/")

    assert response.status_code == 302
    assert response.url == reverse("accounts:password_change")


def test_create_with_sms_sends_password_and_does_not_show_it(admin_a, merchant_a, client_for):
    response = client_for(admin_a).post(url("user_create"), create_payload(merchant_a, delivery="sms"))

    assert response.status_code == 200
    assert response.context["password"] is None
    message = SmsMessage.objects.get(purpose="initial_password")
    assert message.phone == "13700000999"
    user = User.objects.get(username="a.new")
    password = message.text.split("Temporary password ")[1].split(".")[0]
    assert user.check_password(password)
    assert password not in response.content.decode()


def test_create_with_sms_and_no_phone_is_refused(admin_a, merchant_a, client_for):
    response = client_for(admin_a).post(url("user_create"), create_payload(merchant_a, delivery="sms", phone=""))

    assert response.status_code == 200
    assert response.context["form"].errors["delivery"] == ["Enter a mobile phone number to send the password by SMS."]
    assert not User.objects.filter(username="a.new").exists()
    assert SmsMessage.objects.count() == 0


def test_create_with_stale_step_up_redirects_and_creates_nothing(admin_a, merchant_a, client_for):
    client = client_for(admin_a)
    make_stale(client)
    before = audit_count()

    get = client.get(url("user_create"))
    post = client.post(url("user_create"), create_payload(merchant_a))

    step_up = reverse("accounts:step_up")
    assert get.status_code == 302 and get.url.startswith(step_up + "?next=")
    assert post.status_code == 302 and post.url.startswith(step_up + "?next=")
    assert not User.objects.filter(username="a.new").exists()
    assert audit_count() == before


def test_granting_a_role_of_another_organisation_kind_is_refused(admin_a, merchant_a, client_for):
    before = audit_count()

    response = client_for(admin_a).post(url("user_create"), create_payload(merchant_a, roles=["acquirer_admin"]))

    assert response.status_code == 200
    assert response.context["form"].errors["roles"] == ["These roles do not exist in this organisation: acquirer_admin"]
    assert not User.objects.filter(username="a.new").exists()
    assert audit_count() == before


def test_creating_in_another_organisation_is_refused(admin_a, merchant_b, client_for):
    before = audit_count()

    response = client_for(admin_a).post(url("user_create"), create_payload(merchant_b))

    assert response.status_code == 200
    assert "organisation" in response.context["form"].errors
    assert not User.objects.filter(username="a.new").exists()
    assert audit_count() == before


def test_acquirer_admin_creates_only_acquirer_roles(acquirer_admin, acquirer, client_for):
    client = client_for(acquirer_admin)

    refused = client.post(url("user_create"), create_payload(acquirer, roles=["merchant_operator"]))
    created = client.post(url("user_create"), create_payload(acquirer, roles=["acquirer_reviewer"]))

    assert refused.context["form"].errors["roles"] == [
        "These roles do not exist in this organisation: merchant_operator"
    ]
    assert created.status_code == 200
    assert User.objects.get(username="a.new").role_codes == frozenset({"acquirer_reviewer"})


# --- Grant rule and scope (services) -------------------------------------------------------


def test_grantable_roles(admin_a, merchant_a, merchant_b, acquirer_admin, acquirer, platform_admin, platform):
    assert grantable_roles(admin_a, merchant_a) == {
        Role.MERCHANT_ADMIN,
        Role.MERCHANT_OPERATOR,
        Role.MERCHANT_REVIEWER,
        Role.AUDITOR,
    }
    assert grantable_roles(admin_a, merchant_b) == frozenset()
    assert grantable_roles(acquirer_admin, acquirer) == {Role.ACQUIRER_ADMIN, Role.ACQUIRER_REVIEWER, Role.AUDITOR}
    # An acquirer administrator manages its own acquirer's users, not its merchants' users.
    assert grantable_roles(acquirer_admin, merchant_a) == frozenset()
    assert grantable_roles(platform_admin, platform) == {Role.PLATFORM_ADMIN, Role.AUDITOR}
    assert grantable_roles(platform_admin, merchant_b) == {
        Role.MERCHANT_ADMIN,
        Role.MERCHANT_OPERATOR,
        Role.MERCHANT_REVIEWER,
        Role.AUDITOR,
    }


def test_manageable_users(admin_a, operator_a, admin_b, acquirer_admin, acquirer_reviewer, platform_admin):
    assert set(users_manageable_by(admin_a)) == {admin_a, operator_a}
    assert set(users_manageable_by(acquirer_admin)) == {acquirer_admin, acquirer_reviewer}
    assert set(users_manageable_by(operator_a)) == set()
    assert set(users_manageable_by(platform_admin)) == {
        admin_a,
        operator_a,
        admin_b,
        acquirer_admin,
        acquirer_reviewer,
        platform_admin,
    }


def test_service_refuses_user_outside_scope(admin_a, admin_b):
    with pytest.raises(User.DoesNotExist):
        user_disable(actor=admin_a, user=admin_b)
    admin_b.refresh_from_db()
    assert admin_b.is_active is True
    assert audit_count("user.disable") == 0


def test_nobody_changes_their_own_roles(admin_a):
    with pytest.raises(ValidationError) as exc:
        user_update(
            actor=admin_a,
            user=admin_a,
            first_name="A",
            last_name="B",
            phone=admin_a.phone,
            roles=["merchant_admin", "auditor"],
        )
    assert exc.value.message_dict == {"roles": ["You cannot change your own roles."]}
    assert admin_a.role_assignments.count() == 1


def test_generated_password_meets_the_policy():
    for _ in range(50):
        password = generate_initial_password()
        assert len(password) == 16
        assert password.isalnum()
        assert any(c.isalpha() for c in password) and any(c.isdigit() for c in password)


# --- Denials on every management view -------------------------------------------------------


@pytest.mark.parametrize("name", ACTIONS + ["user_detail"])
def test_other_organisations_user_is_404(name, admin_a, admin_b, client_for):
    client = client_for(admin_a)
    before = audit_count()

    assert client.get(url(name, admin_b)).status_code == 404
    if name != "user_detail":
        assert client.post(url(name, admin_b), {"delivery": "show"}).status_code == 404

    admin_b.refresh_from_db()
    assert admin_b.is_active is True
    assert audit_count() == before


@pytest.mark.parametrize("name", ACTIONS + ["user_detail"])
def test_acquirer_admin_cannot_manage_its_merchants_users(name, acquirer_admin, operator_a, client_for):
    assert client_for(acquirer_admin).get(url(name, operator_a)).status_code == 404


@pytest.mark.parametrize("name", ACTIONS)
def test_operator_without_users_manage_gets_403(name, operator_a, reviewer_a, client_for):
    client = client_for(operator_a)
    before = audit_count()

    assert client.get(url("user_list")).status_code == 403
    assert client.get(url("user_create")).status_code == 403
    assert client.get(url(name, reviewer_a)).status_code == 403
    assert client.post(url(name, reviewer_a), {"delivery": "show"}).status_code == 403

    reviewer_a.refresh_from_db()
    assert reviewer_a.is_active is True
    assert audit_count() == before


@pytest.mark.parametrize("name", ACTIONS + ["user_detail"])
def test_anonymous_is_sent_to_login(name, operator_a):
    client = Client()

    response = client.post(url(name, operator_a))

    assert response.status_code == 302
    assert response.url.startswith(reverse("accounts:login"))
    assert client.get(url("user_list")).url.startswith(reverse("accounts:login"))
    operator_a.refresh_from_db()
    assert operator_a.is_active is True


@pytest.mark.parametrize("name", ACTIONS + ["user_detail"])
def test_password_only_session_is_sent_to_verify(name, admin_a, operator_a):
    client = Client()
    login_password_only(client, admin_a)
    before = audit_count()

    response = client.post(url(name, operator_a), {"delivery": "show"})

    assert response.status_code == 302
    assert response.url == reverse("accounts:verify")
    assert client.get(url("user_list")).url == reverse("accounts:verify")
    operator_a.refresh_from_db()
    assert operator_a.is_active is True
    assert audit_count() == before


@pytest.mark.parametrize("name", ACTIONS)
def test_stale_step_up_blocks_every_action(name, admin_a, operator_a, client_for):
    client = client_for(admin_a)
    make_stale(client)
    before = audit_count()

    get = client.get(url(name, operator_a))
    post = client.post(url(name, operator_a), {"delivery": "show"})

    assert get.status_code == 302 and get.url.startswith(reverse("accounts:step_up"))
    assert post.status_code == 302 and post.url.startswith(reverse("accounts:step_up"))
    operator_a.refresh_from_db()
    assert operator_a.is_active is True
    assert audit_count() == before


# --- Edit -----------------------------------------------------------------------------------


def test_edit_name_phone_and_roles(admin_a, operator_a, client_for):
    device = sms_device_for(operator_a)
    client = client_for(admin_a)
    old_phone, old_last_name = operator_a.phone, operator_a.last_name

    assert client.get(url("user_edit", operator_a)).status_code == 200
    response = client.post(
        url("user_edit", operator_a),
        {"first_name": "Wang", "last_name": "Wu", "phone": "138 0013 8000", "roles": ["merchant_reviewer"]},
    )

    assert response.status_code == 302
    assert response.url == url("user_detail", operator_a)
    operator_a.refresh_from_db()
    assert (operator_a.first_name, operator_a.last_name, operator_a.phone) == ("Wang", "Wu", "13800138000")
    assert operator_a.phone_verified is False  # until the user's first sign-in code confirms it
    assert set(operator_a.role_assignments.values_list("role", flat=True)) == {"merchant_reviewer"}
    device.refresh_from_db()
    assert (device.phone, device.token) == ("13800138000", None)
    event = AuditEvent.objects.get(action="user.update")
    assert event.details == {
        "username": "a.operator",
        "before": {
            "first_name": "Test",
            "last_name": old_last_name,
            "phone": old_phone[:3] + "****" + old_phone[-4:],
            "roles": ["merchant_operator"],
        },
        "after": {"first_name": "Wang", "last_name": "Wu", "phone": "138****8000", "roles": ["merchant_reviewer"]},
        "phone_set_by_admin": True,
        "phone_verified": False,
    }


def test_edit_refuses_role_of_another_kind(admin_a, operator_a, client_for):
    response = client_for(admin_a).post(
        url("user_edit", operator_a),
        {"first_name": "x", "last_name": "y", "phone": operator_a.phone, "roles": ["platform_admin"]},
    )

    assert response.status_code == 200
    assert response.context["form"].errors["roles"] == ["These roles do not exist in this organisation: platform_admin"]
    assert operator_a.role_assignments.get().role == "merchant_operator"
    assert audit_count("user.update") == 0


# --- Disable / enable -----------------------------------------------------------------------


def test_disable_ends_the_users_sessions_at_once(admin_a, operator_a, client_for, django_capture_on_commit_callbacks):
    target_client = client_for(operator_a)
    assert target_client.get("/").status_code == 200
    client = client_for(admin_a)

    assert client.get(url("user_disable", operator_a)).status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url("user_disable", operator_a))

    assert response.status_code == 302
    operator_a.refresh_from_db()
    assert operator_a.is_active is False
    assert audit_count("user.disable") == 1
    next_request = target_client.get("/")
    assert next_request.status_code == 302
    assert next_request.url.startswith(reverse("accounts:login"))
    sessions = [s.get_decoded().get("_auth_user_id") for s in Session.objects.all()]
    assert str(operator_a.pk) not in sessions
    assert str(admin_a.pk) in sessions
    # The list shows them disabled.
    page = client.get(url("user_list"), {"status": "disabled"})
    assert [u.username for u in page.context["table"].data] == ["a.operator"]


def test_epoch_alone_ends_the_session(admin_a, operator_a, client_for):
    # Without running the on-commit session cleanup, the epoch bump is enough.
    target_client = client_for(operator_a)

    user_disable(actor=admin_a, user=operator_a)

    assert target_client.get("/").status_code == 302


def test_cannot_disable_oneself(admin_a, client_for):
    response = client_for(admin_a).post(url("user_disable", admin_a))

    assert response.status_code == 302
    assert [str(m) for m in get_messages(response.wsgi_request)] == ["You cannot disable your own account."]
    admin_a.refresh_from_db()
    assert admin_a.is_active is True
    assert audit_count("user.disable") == 0


def test_enable_a_disabled_user(admin_a, operator_a, client_for):
    user_disable(actor=admin_a, user=operator_a)

    response = client_for(admin_a).post(url("user_enable", operator_a))

    assert response.status_code == 302
    operator_a.refresh_from_db()
    assert operator_a.is_active is True
    assert audit_count("user.enable") == 1


# --- Unlock ---------------------------------------------------------------------------------


def test_unlock_resets_axes(admin_a, operator_a, client_for):
    lock_out(operator_a.username)
    assert axes_locked(operator_a.username) is True
    client = client_for(admin_a)
    assert [u.username for u in client.get(url("user_list"), {"status": "locked"}).context["table"].data] == [
        "a.operator"
    ]

    assert client.get(url("user_unlock", operator_a)).status_code == 200
    response = client.post(url("user_unlock", operator_a))

    assert response.status_code == 302
    assert axes_locked(operator_a.username) is False
    assert AccessAttempt.objects.filter(username=operator_a.username).count() == 0
    event = AuditEvent.objects.get(action="user.unlock")
    assert event.details == {"username": "a.operator", "attempts_cleared": 1}
    assert client.get(url("user_list"), {"status": "locked"}).context["table"].data.data.count() == 0


# --- Reset password -------------------------------------------------------------------------


def test_reset_password_sets_must_change_and_changes_hash(admin_a, operator_a, client_for):
    old_hash, old_epoch = operator_a.password, operator_a.session_epoch
    client = client_for(admin_a)

    assert client.get(url("user_reset_password", operator_a)).status_code == 200
    response = client.post(url("user_reset_password", operator_a), {"delivery": "show"})

    assert response.status_code == 200
    password = response.context["password"]
    operator_a.refresh_from_db()
    assert operator_a.password != old_hash
    assert operator_a.check_password(password)
    assert operator_a.must_change_password is True
    assert operator_a.session_epoch == old_epoch + 1
    assert audit_count("user.password_reset") == 1


# --- List -----------------------------------------------------------------------------------


def test_list_shows_only_manageable_users(admin_a, operator_a, admin_b, acquirer_admin, client_for):
    response = client_for(admin_a).get(url("user_list"))

    assert response.status_code == 200
    assert [u.username for u in response.context["table"].data] == ["a.admin", "a.operator"]
    content = response.content.decode()
    assert "b.admin" not in content
    assert operator_a.phone not in content
    assert operator_a.masked_phone in content


def test_list_filters(admin_a, operator_a, reviewer_a, merchant_a, client_for):
    client = client_for(admin_a)

    def names(**params):
        return [u.username for u in client.get(url("user_list"), params).context["table"].data]

    assert names(q="OPER") == ["a.operator"]
    assert names(q=reviewer_a.phone[-6:]) == ["a.reviewer"]
    assert names(role="merchant_reviewer") == ["a.reviewer"]
    assert names(status="active") == ["a.admin", "a.operator", "a.reviewer"]
    assert names(last_login_from="2020-01-01") == ["a.admin"]  # the only one signed in (force_login)


def test_list_query_count_does_not_grow_with_users(admin_a, merchant_a, client_for, django_assert_max_num_queries):
    client = client_for(admin_a)
    for _ in range(3):
        UserFactory(organisation=merchant_a, roles=["merchant_operator", "auditor"])
    client.get(url("user_list"))  # warm up

    with django_assert_max_num_queries(11):
        small = client.get(url("user_list"))
    for _ in range(20):
        UserFactory(organisation=merchant_a, roles=["merchant_operator", "auditor"])
    with django_assert_max_num_queries(11):
        large = client.get(url("user_list"))

    assert len(small.context["table"].rows) == 4
    assert len(large.context["table"].rows) == 24


def test_reset_password_by_sms(admin_a, operator_a, client_for):
    response = client_for(admin_a).post(url("user_reset_password", operator_a), {"delivery": "sms"})

    assert response.status_code == 200
    assert response.context["password"] is None
    message = SmsMessage.objects.get(purpose="initial_password")
    assert message.phone == operator_a.phone
    password = message.text.split("temporary password ")[1].split(".")[0]
    operator_a.refresh_from_db()
    assert operator_a.check_password(password)
    assert operator_a.must_change_password is True
