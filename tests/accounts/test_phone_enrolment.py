"""An administrator's phone is confirmed by the user's first sign-in code before it is a factor (security
check A8), and one verified phone per active user is a database constraint over the canonical phone form
(security check B1)."""

from __future__ import annotations

import importlib
import threading
import time

import pytest
from axes.models import AccessAttempt
from django.apps import apps
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, connections, transaction
from django.test import Client
from django.urls import reverse
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from portal.accounts import auth_services
from portal.accounts.auth_forms import PhoneForm
from portal.accounts.forms_users import UserEditForm
from portal.accounts.models import VERIFIED_PHONE_CONSTRAINT, SMSDevice, SmsMessage, User
from portal.accounts.phones import normalise_phone
from portal.accounts.services import (
    phone_in_use_by_another,
    user_create,
    user_create_managed,
    user_disable,
    user_update,
)
from portal.accounts.stepup import SESSION_OTP_VERIFIED_AT
from portal.audit.models import AuditEvent
from tests.factories import UserFactory

from .auth_helpers import (
    HOME_URL,
    VERIFY_URL,
    actions,
    assert_enabling_refused_for_the_phone,
    last_code,
    password_step,
    submit_code,
)

pytestmark = pytest.mark.django_db

PHONE = "13800138000"
MAINLAND_FORMS = ["13800138000", "8613800138000", "+8613800138000"]
PHONE_MESSAGE = (
    "Another active user already has this mobile phone number: each person needs their own phone for sign-in codes."
)
TAKEN_AT_SIGN_IN = (
    "Your mobile phone number is already confirmed for another active user, so this code cannot confirm it "
    "for you. Ask your administrator to correct your phone number."
)
TAKEN_AT_SIGN_IN_ZH = "您的手机号码已被另一位正常状态的用户确认使用"
STEP_UP_URL = reverse("accounts:step_up")
SECURITY_URL = reverse("accounts:security")
PHONE_URL = reverse("accounts:phone_change")


def create_by_admin(admin, phone: str = PHONE, username: str = "li.na") -> tuple[User, str]:
    return user_create_managed(
        actor=admin, organisation=admin.organisation, username=username, phone=phone, roles=["merchant_operator"]
    )


def totp_token(device: TOTPDevice) -> str:
    return f"{totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits, drift=device.drift):06d}"


def stale_step_up(client: Client) -> None:
    session = client.session
    session[SESSION_OTP_VERIFIED_AT] = time.time() - 600
    session.save()


# --- The canonical form ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "typed,stored",
    [
        ("13800138000", "13800138000"),
        ("8613800138000", "13800138000"),
        ("+8613800138000", "13800138000"),
        ("+86 138-0013-8000", "13800138000"),
        (" 138 0013 8000 ", "13800138000"),
        ("+85291234567", "+85291234567"),  # Hong Kong: as typed
        ("+14155550100", "+14155550100"),
        ("8602112345678", "8602112345678"),  # not a mainland mobile after 86: as typed
        ("+861380013800", "+861380013800"),  # one digit short: as typed
        ("", ""),
    ],
)
def test_normalise_phone(typed, stored):
    assert normalise_phone(typed) == stored


def test_forms_and_services_store_the_canonical_form(admin_a, operator_a):
    assert UserEditForm(
        {"phone": "+86 138 0013 8000", "roles": ["merchant_operator"]}, actor=admin_a, target=operator_a
    ).is_valid()
    form = PhoneForm({"phone": "+86 137-1234-5678"}, user=operator_a)
    assert form.is_valid() and form.cleaned_data["phone"] == "13712345678"

    user, _password = create_by_admin(admin_a, phone="+8613800138000")
    user.refresh_from_db()
    assert user.phone == PHONE
    user_update(
        actor=admin_a,
        user=operator_a,
        first_name="O",
        last_name="P",
        phone="8613712345678",
        roles=["merchant_operator"],
    )
    operator_a.refresh_from_db()
    assert operator_a.phone == "13712345678"


def test_the_same_number_in_another_form_is_no_phone_change(admin_a, operator_a):
    canonical = operator_a.phone
    user_update(
        actor=admin_a,
        user=operator_a,
        first_name="O",
        last_name="P",
        phone=f"+86{canonical}",
        roles=["merchant_operator"],
    )
    operator_a.refresh_from_db()
    assert (operator_a.phone, operator_a.phone_verified) == (canonical, True)
    assert "phone_set_by_admin" not in AuditEvent.objects.get(action="user.update").details


# --- A8: an administrator's phone is an enrolment phone ----------------------------------------


def test_an_administrators_phone_is_stored_unverified(admin_a):
    user, _password = create_by_admin(admin_a)

    user.refresh_from_db()
    assert (user.phone, user.phone_verified) == (PHONE, False)
    assert AuditEvent.objects.get(action="user.create").details == {"username": "li.na", "roles": ["merchant_operator"]}


def test_a_phone_changed_by_an_administrator_is_unverified_and_audited_so(admin_a, operator_a):
    user_update(actor=admin_a, user=operator_a, first_name="O", last_name="P", phone=PHONE, roles=["merchant_operator"])

    operator_a.refresh_from_db()
    assert (operator_a.phone, operator_a.phone_verified) == (PHONE, False)
    details = AuditEvent.objects.get(action="user.update").details
    assert (details["phone_set_by_admin"], details["phone_verified"]) == (True, False)
    assert details["after"]["phone"] == "138****8000"


def test_the_first_sign_in_code_confirms_the_phone_and_is_audited(admin_a):
    user, password = create_by_admin(admin_a)
    client = Client()

    # when the new user signs in: the code goes to the phone not confirmed yet
    assert password_step(client, "li.na", password)["Location"] == VERIFY_URL
    response = submit_code(client, last_code(PHONE))

    # then the sign-in completes (forced password change first) and the phone is verified, audited
    assert response["Location"] == reverse("accounts:password_change")
    user.refresh_from_db()
    assert user.phone_verified is True and user.last_login is not None
    assert actions() == ["user.create", "auth.login_success", "auth.phone_verified", "auth.otp_success"]
    event = AuditEvent.objects.get(action="auth.phone_verified")
    assert (event.actor, event.object_id) == (user, str(user.pk))
    assert event.details == {"phone": "138****8000", "method": "sms", "purpose": "login"}
    # a later sign-in confirms nothing again
    second = Client()
    password_step(second, "li.na", password)
    submit_code(second, last_code(PHONE))
    assert AuditEvent.objects.filter(action="auth.phone_verified").count() == 1


def test_a_sign_in_code_for_a_phone_another_active_user_verified_meanwhile_is_refused(admin_a, merchant_a):
    user, password = create_by_admin(admin_a)
    client = Client()
    password_step(client, "li.na", password)
    code = last_code(PHONE)
    # another active user gets the number as their verified phone before the code comes back
    UserFactory(organisation=merchant_a, username="a.other", phone=f"+86{PHONE}")
    before = actions()

    response = submit_code(client, code)

    assert response.status_code == 200
    assert TAKEN_AT_SIGN_IN in response.content.decode()
    user.refresh_from_db()
    assert (user.phone_verified, user.last_login) == (False, None)
    assert client.get(HOME_URL)["Location"] == VERIFY_URL  # not signed in
    # no sign-in, no confirmation, no code failure: the refusal itself, for the administrators
    assert actions()[len(before) :] == ["auth.phone_verify_refused"]
    refusal = AuditEvent.objects.order_by("-sequence").first()
    assert (refusal.outcome, refusal.object_id, refusal.details["reason"]) == ("failure", str(user.pk), "phone_in_use")
    assert PHONE not in str(refusal.details)  # masked
    assert not AccessAttempt.objects.filter(username="li.na").exists()  # a right code is not counted


def test_the_refusal_is_in_the_users_language(admin_a, merchant_a):
    user, password = create_by_admin(admin_a)
    auth_services.user_set_language(user=user, language="zh-hans")
    client = Client()
    password_step(client, "li.na", password)
    UserFactory(organisation=merchant_a, username="a.other", phone=PHONE)

    response = submit_code(client, last_code(PHONE))

    assert TAKEN_AT_SIGN_IN_ZH in response.content.decode()
    user.refresh_from_db()
    assert user.phone_verified is False


def test_a_code_sent_before_the_administrator_changed_the_phone_confirms_nothing(admin_a):
    user, password = create_by_admin(admin_a)
    client = Client()
    password_step(client, "li.na", password)
    old_code = last_code(PHONE)
    user_update(actor=admin_a, user=user, first_name="", last_name="", phone="13712345678", roles=["merchant_operator"])

    response = submit_code(client, old_code)

    assert response.status_code == 200
    assert "This code is not valid or has expired." in response.content.decode()
    user.refresh_from_db()
    assert (user.phone, user.phone_verified) == ("13712345678", False)
    assert not AuditEvent.objects.filter(action__in=["auth.phone_verified", "auth.otp_success"]).exists()


def test_an_authenticator_app_sign_in_does_not_confirm_the_phone(merchant_a):
    user = UserFactory(organisation=merchant_a, username="a.app", phone=PHONE, phone_verified=False)
    device = TOTPDevice.objects.create(user=user, name="app", confirmed=True)
    client = Client()
    password_step(client, "a.app")
    assert 'value="sms"' in client.get(VERIFY_URL).content.decode()  # sign-in codes still go to the phone

    assert submit_code(client, totp_token(device), method="totp")["Location"] == HOME_URL

    user.refresh_from_db()
    assert user.phone_verified is False
    assert not AuditEvent.objects.filter(action="auth.phone_verified").exists()


def test_an_unconfirmed_phone_is_no_step_up_factor(merchant_a, client_for):
    user = UserFactory(organisation=merchant_a, username="a.new", phone=PHONE, phone_verified=False)
    client = client_for(user)
    stale_step_up(client)

    page = client.get(STEP_UP_URL, {"next": PHONE_URL})
    submitted = client.post(STEP_UP_URL, {"otp_token": "123456", "method": "sms", "next": PHONE_URL})
    api = client.post("/api/v1/otp/send/")

    assert page.status_code == 200 and 'name="otp_token"' not in page.content.decode()
    assert submitted.status_code == 200
    assert (api.status_code, api.json()["error"]["code"]) == (400, "no_phone")
    assert not SmsMessage.objects.filter(purpose="otp_step_up").exists()
    assert not AuditEvent.objects.filter(action="auth.step_up").exists()
    with pytest.raises(ValueError):
        auth_services.sms_code_send(user=user, purpose="step_up", phone=PHONE, challenge="x")


def test_a_step_up_code_sent_before_the_phone_lost_its_verification_is_refused(operator_a, client_for):
    device = auth_services.sms_code_send(user=operator_a, purpose="step_up", phone=operator_a.phone, challenge="n")
    operator_a.phone_verified = False
    operator_a.save(update_fields=["phone_verified"])

    check = auth_services.auth_step_up_verify(user=operator_a, method="sms", token=device.token, challenge="n")

    assert check.ok is False
    assert actions() == ["auth.otp_failure"]


def test_the_security_page_says_whether_the_phone_is_confirmed(merchant_a, client_for):
    user = UserFactory(organisation=merchant_a, username="a.new", phone=PHONE, phone_verified=False)

    unconfirmed = client_for(user).get(SECURITY_URL).content.decode()
    user.phone_verified = True
    user.save(update_fields=["phone_verified"])
    confirmed = client_for(user).get(SECURITY_URL).content.decode()

    assert 'data-verified="false"' in unconfirmed and "Not yet confirmed" in unconfirmed
    assert "The first sign-in code sent to this number confirms it." in unconfirmed
    assert 'data-verified="true"' in confirmed and "Not yet confirmed" not in confirmed


def test_the_user_page_shows_an_unconfirmed_phone(admin_a, client_for):
    user, _password = create_by_admin(admin_a)
    page = client_for(admin_a).get(reverse("accounts:user_detail", args=[user.pk])).content.decode()
    assert "138****8000" in page and "Not yet confirmed" in page
    own = client_for(admin_a).get(reverse("accounts:user_detail", args=[admin_a.pk])).content.decode()
    assert "Not yet confirmed" not in own


def test_the_access_review_shows_an_unconfirmed_phone(admin_a, tmp_path):
    import csv
    import io

    from django.core.management import call_command

    create_by_admin(admin_a)
    path = tmp_path / "review.csv"
    call_command("access_review", "--output", str(path), stdout=io.StringIO())
    rows = {row[0]: row for row in csv.reader(io.StringIO(path.read_bytes().decode("utf-8-sig")))}
    assert rows["li.na"][9] == "SMS (phone not yet confirmed)"
    assert rows["a.admin"][9] == "SMS"


def test_the_seeded_demo_users_have_verified_phones():
    import io

    from django.core.management import call_command

    from portal.accounts.management.commands.seed_demo import USERS

    call_command("seed_demo", stdout=io.StringIO())

    users = User.objects.filter(username__in=[name for name, *_rest in USERS])
    assert sorted(users.values_list("phone_verified", flat=True)) == [True] * len(USERS)


def test_the_users_own_phone_change_is_verified_at_once(admin_a, client_for):
    client = client_for(admin_a)
    client.post(PHONE_URL, {"action": "send", "phone": "+86 137 1234 5678"})
    client.post(PHONE_URL, {"action": "confirm", "otp_token": last_code("13712345678", purpose="otp_phone_change")})
    admin_a.refresh_from_db()
    assert (admin_a.phone, admin_a.phone_verified) == ("13712345678", True)


# --- B1: the database constraint ---------------------------------------------------------------


@pytest.mark.parametrize("form", MAINLAND_FORMS)
def test_the_database_refuses_a_second_active_user_with_the_verified_phone(merchant_a, form):
    UserFactory(organisation=merchant_a, username="a.first", phone=PHONE)
    second = UserFactory(organisation=merchant_a, username="a.second", phone=form, phone_verified=False)

    with pytest.raises(IntegrityError), transaction.atomic():
        User.objects.filter(pk=second.pk).update(phone_verified=True)
    with pytest.raises(IntegrityError), transaction.atomic():
        UserFactory(organisation=merchant_a, username="a.third", phone=form)


def test_the_constraint_covers_active_users_with_a_verified_phone_only(merchant_a):
    first = UserFactory(organisation=merchant_a, username="a.first", phone=PHONE)
    UserFactory(organisation=merchant_a, username="a.unverified", phone=PHONE, phone_verified=False)
    UserFactory(organisation=merchant_a, username="a.disabled", phone=f"+86{PHONE}", is_active=False)
    UserFactory(organisation=merchant_a, username="a.nophone1", phone="")
    UserFactory(organisation=merchant_a, username="a.nophone2", phone="")

    first.is_active = False
    first.save(update_fields=["is_active"])
    UserFactory(organisation=merchant_a, username="a.next", phone=f"86{PHONE}")

    assert User.objects.filter(phone_verified=True, is_active=True, phone__endswith=PHONE).count() == 1


@pytest.mark.parametrize("form", MAINLAND_FORMS)
def test_the_services_refuse_the_phone_in_any_form_with_the_validation_error(admin_a, merchant_a, form):
    UserFactory(organisation=merchant_a, username="a.first", phone=PHONE)

    with pytest.raises(ValidationError) as exc:
        create_by_admin(admin_a, phone=form)

    assert exc.value.message_dict == {"phone": [PHONE_MESSAGE]}
    assert phone_in_use_by_another(form) is True


def _race_lost(monkeypatch):
    """The Python check passed before the other write committed: only the constraint is left."""
    monkeypatch.setattr("portal.accounts.services.phone_in_use_by_another", lambda *args, **kwargs: False)
    monkeypatch.setattr("portal.accounts.auth_services.phone_in_use_by_another", lambda *args, **kwargs: False)


def test_a_creation_that_loses_the_race_gets_the_validation_error(admin_a, merchant_a, monkeypatch):
    UserFactory(organisation=merchant_a, username="a.first", phone=PHONE)
    _race_lost(monkeypatch)
    before = actions()

    with pytest.raises(ValidationError) as exc:
        user_create(
            actor=None,
            organisation=merchant_a,
            username="a.seeded",
            raw_password="Another-pass-2026x",
            phone=f"+86{PHONE}",
            phone_verified=True,
            roles=["merchant_operator"],
        )

    assert exc.value.message_dict == {"phone": [PHONE_MESSAGE]}
    assert not User.objects.filter(username="a.seeded").exists()
    assert actions() == before


def test_an_enabling_that_loses_the_race_gets_the_validation_error(admin_a, operator_a, merchant_a, monkeypatch):
    user_disable(actor=admin_a, user=operator_a)
    UserFactory(organisation=merchant_a, username="a.other", phone=operator_a.phone)
    _race_lost(monkeypatch)

    assert_enabling_refused_for_the_phone(admin_a, operator_a)


def test_the_enable_view_shows_the_refusal_not_a_server_error(admin_a, operator_a, merchant_a, client_for, monkeypatch):
    user_disable(actor=admin_a, user=operator_a)
    UserFactory(organisation=merchant_a, username="a.other", phone=operator_a.phone)
    _race_lost(monkeypatch)

    response = client_for(admin_a).post(reverse("accounts:user_enable", args=[operator_a.pk]), follow=True)

    assert response.status_code == 200
    assert "Another active user has this user&#x27;s mobile phone number" in response.content.decode()


def test_a_phone_change_that_loses_the_race_is_refused(admin_a, operator_a, client_for, monkeypatch):
    client = client_for(admin_a)
    old_phone = admin_a.phone
    client.post(PHONE_URL, {"action": "send", "phone": PHONE})
    code = last_code(PHONE, purpose="otp_phone_change")
    operator_a.phone = PHONE
    operator_a.save(update_fields=["phone"])
    _race_lost(monkeypatch)

    response = client.post(PHONE_URL, {"action": "confirm", "otp_token": code}, follow=True)

    assert response.status_code == 200
    assert PHONE_MESSAGE in response.content.decode()
    admin_a.refresh_from_db()
    assert (admin_a.phone, admin_a.phone_verified) == (old_phone, True)
    assert "auth.phone_change" not in actions()


def test_a_first_sign_in_that_loses_the_race_is_refused(admin_a, merchant_a, monkeypatch):
    user, password = create_by_admin(admin_a)
    client = Client()
    password_step(client, "li.na", password)
    UserFactory(organisation=merchant_a, username="a.other", phone=PHONE)
    _race_lost(monkeypatch)

    response = submit_code(client, last_code(PHONE))

    assert response.status_code == 200 and TAKEN_AT_SIGN_IN in response.content.decode()
    user.refresh_from_db()
    assert user.phone_verified is False
    assert not AuditEvent.objects.filter(action__in=["auth.phone_verified", "auth.otp_success"]).exists()


# --- The data migration ------------------------------------------------------------------------


def test_the_migration_normalises_phones_and_leaves_one_verified_holder(merchant_a):
    """0002 on rows written before the rule (the constraint is dropped for the setup, inside the test's
    transaction), then 0003's constraint can be created on the result."""
    migration = importlib.import_module("portal.accounts.migrations.0002_normalise_phones")
    constraint = next(c for c in User._meta.constraints if c.name == VERIFIED_PHONE_CONSTRAINT)
    with connection.cursor() as cursor:
        cursor.execute(f"DROP INDEX {connection.ops.quote_name(VERIFIED_PHONE_CONSTRAINT)}")
    first = UserFactory(organisation=merchant_a, username="a.first", phone=f"+86{PHONE}")
    second = UserFactory(organisation=merchant_a, username="a.second", phone=PHONE)
    third = UserFactory(organisation=merchant_a, username="a.third", phone=f"86{PHONE}")
    disabled = UserFactory(organisation=merchant_a, username="a.disabled", phone=PHONE, is_active=False)
    foreign = UserFactory(organisation=merchant_a, username="a.foreign", phone="+85291234567")
    User.objects.filter(pk=first.pk).update(date_joined=second.date_joined.replace(year=2020))
    device = SMSDevice.objects.create(user=third, name="sms", phone=f"+86{PHONE}", confirmed=True)

    migration.normalise_phones(apps, None)

    rows = dict(User.objects.values_list("username", "phone"))
    assert {rows[u.username] for u in (first, second, third, disabled)} == {PHONE}
    assert rows[foreign.username] == "+85291234567"
    verified = dict(User.objects.values_list("username", "phone_verified"))
    assert [verified[u.username] for u in (first, second, third, disabled)] == [True, False, False, True]
    device.refresh_from_db()
    assert device.phone == PHONE
    # The statement 0003 runs (the SQLite editor cannot be entered inside the test's transaction).
    create_sql = str(constraint.create_sql(User, connection.schema_editor(collect_sql=True)))
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # The test's inserts left deferred foreign-key checks pending, which CREATE INDEX refuses to
            # run beside (0002 and 0003 are separate migrations, so separate transactions, for this reason).
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute(create_sql)  # 0003 succeeds on the migrated rows
    with pytest.raises(IntegrityError), transaction.atomic():
        User.objects.filter(pk=second.pk).update(phone_verified=True)


# --- PostgreSQL: two first sign-ins on one phone at the same moment ------------------------------


@pytest.mark.integration
@pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL (DATABASE_URL=postgres://...)")
@pytest.mark.django_db(transaction=True)
def test_two_first_sign_ins_on_one_phone_at_once_confirm_it_once(monkeypatch):
    from portal.accounts.sms import tasks
    from tests.factories import MerchantFactory

    monkeypatch.setattr(tasks.send_sms_message, "delay", lambda *args, **kwargs: None)
    merchant = MerchantFactory()
    users = [
        UserFactory(organisation=merchant, username=f"race.{n}", phone=PHONE, phone_verified=False) for n in range(2)
    ]
    tokens = [
        auth_services.sms_code_send(user=u, purpose="login", phone=PHONE, challenge=f"nonce-{u.pk}").token
        for u in users
    ]
    barrier = threading.Barrier(2)
    results: dict[int, auth_services.CodeCheck] = {}
    errors: list[BaseException] = []

    def submit(user, token):
        try:
            barrier.wait(timeout=10)
            results[user.pk] = auth_services.auth_otp_verify(
                user=user, method="sms", token=token, challenge=f"nonce-{user.pk}", ip=None
            )
        except BaseException as exc:  # reported below, a thread must not swallow it
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=submit, args=pair) for pair in zip(users, tokens, strict=True)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert errors == []
    assert sorted((c.ok, c.phone_in_use) for c in results.values()) == [(False, True), (True, False)]
    assert User.objects.filter(phone=PHONE, phone_verified=True).count() == 1
    assert AuditEvent.objects.filter(action="auth.phone_verified").count() == 1
