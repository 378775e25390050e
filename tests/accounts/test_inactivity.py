"""Accounts inactive for more than ACCOUNT_INACTIVE_DAYS (90) days are disabled by a daily job
(PCI DSS 8.2.6, security.md B2)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.contrib.sessions.models import Session
from django.utils import timezone

from portal.accounts.models import User
from portal.accounts.services import user_disable, user_enable, users_disable_inactive
from portal.accounts.tasks import disable_inactive_users
from portal.audit.models import AuditEvent
from portal.celery import app
from tests.factories import UserFactory

from .auth_helpers import HOME_URL, LOGIN_URL

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 3, 1, 18, 0, tzinfo=UTC)


@pytest.fixture
def clock():
    """Time stands still at NOW (the job's daily run)."""
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


def joined_days_ago(days: int, **fields) -> User:
    """A user created ``days`` days before NOW (``date_joined`` as the clock said then)."""
    with time_machine.travel(NOW - timedelta(days=days), tick=False):
        return UserFactory(**fields)


def signed_in_days_ago(user: User, days: int) -> User:
    User.objects.filter(pk=user.pk).update(last_login=NOW - timedelta(days=days))
    user.refresh_from_db()
    return user


def disable_events(user: User | None = None) -> list[AuditEvent]:
    events = AuditEvent.objects.filter(action="user.disable").order_by("sequence")
    if user is not None:
        events = events.filter(object_type="accounts.user", object_id=str(user.pk))
    return list(events)


@pytest.mark.parametrize("days", [89, 90])
def test_a_sign_in_90_days_ago_or_later_keeps_the_account(clock, merchant_a, days):
    # given a user created long ago who last signed in 89 (or exactly 90) days ago
    user = signed_in_days_ago(joined_days_ago(400, organisation=merchant_a), days)

    # when the job runs
    disabled = users_disable_inactive()

    # then nothing changes
    user.refresh_from_db()
    assert (disabled, user.is_active, user.session_epoch) == (0, True, 0)
    assert disable_events() == []


def test_a_sign_in_91_days_ago_disables_ends_sessions_and_audits_once(
    clock, merchant_a, client_for, django_capture_on_commit_callbacks
):
    # given a user with a live session whose last sign-in was 91 days ago
    user = joined_days_ago(400, organisation=merchant_a, username="sleepy")
    client = client_for(user)
    assert client.get(HOME_URL).status_code == 200
    other = client_for(UserFactory(organisation=merchant_a))  # someone else, signed in now
    user = signed_in_days_ago(user, 91)
    assert Session.objects.count() == 2

    # when the job runs
    with django_capture_on_commit_callbacks(execute=True):
        disabled = users_disable_inactive()

    # then the account is disabled, its sessions end at once and are deleted, one event says why
    user.refresh_from_db()
    assert (disabled, user.is_active, user.session_epoch) == (1, False, 1)
    response = client.get(HOME_URL)
    assert response.status_code == 302 and response["Location"].startswith(LOGIN_URL)
    assert str(user.pk) not in [s.get_decoded().get("_auth_user_id") for s in Session.objects.all()]
    assert other.get(HOME_URL).status_code == 200
    (event,) = AuditEvent.objects.all()
    assert (event.action, event.actor_id, event.actor_repr, event.outcome) == ("user.disable", None, "", "success")
    assert (event.organisation_id, event.object_type, event.object_id) == (merchant_a.pk, "accounts.user", str(user.pk))
    assert event.details == {
        "username": "sleepy",
        "reason": "inactivity",
        "last_activity": (NOW - timedelta(days=91)).isoformat(),
        "limit_days": 90,
    }


@pytest.mark.parametrize("days,active", [(89, True), (91, False)])
def test_a_user_who_never_signed_in_counts_from_the_account_creation(clock, merchant_a, days, active):
    user = joined_days_ago(days, organisation=merchant_a)
    assert user.last_login is None

    users_disable_inactive()

    user.refresh_from_db()
    assert user.is_active is active
    assert len(disable_events(user)) == (0 if active else 1)


def test_running_twice_changes_nothing_the_second_time(clock, merchant_a):
    stale = signed_in_days_ago(joined_days_ago(200, organisation=merchant_a), 120)
    fresh = signed_in_days_ago(joined_days_ago(200, organisation=merchant_a), 1)
    assert disable_inactive_users() == 1
    stale.refresh_from_db()
    events = AuditEvent.objects.count()

    assert disable_inactive_users() == 0

    assert AuditEvent.objects.count() == events == 1
    assert list(User.objects.order_by("pk").values_list("pk", "is_active", "session_epoch")) == [
        (stale.pk, False, 1),
        (fresh.pk, True, 0),
    ]


def test_an_account_disabled_already_is_left_alone(clock, merchant_a, admin_a):
    user = signed_in_days_ago(joined_days_ago(200, organisation=merchant_a), 120)
    user_disable(actor=admin_a, user=user)
    before = AuditEvent.objects.count()

    assert users_disable_inactive() == 0

    assert AuditEvent.objects.count() == before


def test_superusers_and_staff_are_no_exception(clock, platform):
    # The flags grant nothing in the portal; an unused administrator account is the riskiest to keep.
    root = signed_in_days_ago(joined_days_ago(400, organisation=platform, is_superuser=True, is_staff=True), 91)
    admin = signed_in_days_ago(joined_days_ago(400, organisation=platform, roles=["platform_admin"], is_staff=True), 91)

    assert users_disable_inactive() == 2

    assert list(User.objects.filter(pk__in=[root.pk, admin.pk]).values_list("is_active", flat=True)) == [False, False]


def test_an_account_enabled_again_gets_a_full_period_to_sign_in(merchant_a):
    def admin_signs_in():
        User.objects.filter(pk=admin.pk).update(last_login=timezone.now())

    # given an account disabled for inactivity and enabled again by its administrator 10 days later
    with time_machine.travel(NOW, tick=False):
        admin = UserFactory(organisation=merchant_a, roles=["merchant_admin"])
        admin_signs_in()
        user = signed_in_days_ago(joined_days_ago(400, organisation=merchant_a), 91)
        assert users_disable_inactive() == 1
    with time_machine.travel(NOW + timedelta(days=10), tick=False):
        user_enable(actor=admin, user=user)

    # when the job runs 90 days after the enabling, the account stays; just after 91 days it goes
    with time_machine.travel(NOW + timedelta(days=100), tick=False):
        admin_signs_in()
        assert users_disable_inactive() == 0
    with time_machine.travel(NOW + timedelta(days=101, seconds=1), tick=False):
        admin_signs_in()
        assert users_disable_inactive() == 1

    user.refresh_from_db()
    assert user.is_active is False
    assert [e.details["reason"] for e in disable_events(user)] == ["inactivity", "inactivity"]


def test_the_limit_comes_from_the_setting(clock, merchant_a, settings):
    settings.ACCOUNT_INACTIVE_DAYS = 30
    kept = signed_in_days_ago(joined_days_ago(100, organisation=merchant_a), 29)
    gone = signed_in_days_ago(joined_days_ago(100, organisation=merchant_a), 31)

    assert users_disable_inactive() == 1

    assert list(User.objects.filter(pk__in=[kept.pk, gone.pk]).order_by("pk").values_list("is_active", flat=True)) == [
        True,
        False,
    ]
    assert disable_events(gone)[0].details["limit_days"] == 30


def test_the_job_is_registered_and_runs_daily(settings):
    assert "accounts.disable_inactive_users" in app.tasks
    entry = settings.CELERY_BEAT_SCHEDULE["accounts-disable-inactive"]
    assert entry["task"] == "accounts.disable_inactive_users"
    assert settings.CELERY_TIMEZONE == "UTC"
    # 02:00 Beijing, every day
    assert entry["schedule"].hour == {18} and entry["schedule"].minute == {0}
    assert entry["schedule"].day_of_month == set(range(1, 32)) and entry["schedule"].day_of_week == set(range(7))
    assert settings.ACCOUNT_INACTIVE_DAYS == 90
