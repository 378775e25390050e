"""Fee rates and working-day overrides edited in the Django admin: every add, change and delete writes one audit
event in the same transaction (security D1); a refused or invalid edit writes none."""

import datetime as dt

import pytest
from django.test import Client

from portal.audit.models import AuditEvent
from reconciliation.models import FeeRate, WorkingDayOverride
from tests.factories import login_password_only

pytestmark = pytest.mark.django_db

FEE_RATES = "/admin/reconciliation/feerate/"
OVERRIDES = "/admin/reconciliation/workingdayoverride/"


def new_events(before: int) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(sequence__gt=before).order_by("sequence"))


@pytest.fixture
def last_sequence():
    """The sequence of the newest audit event now (events written later are the test's)."""

    def read() -> int:
        return AuditEvent.objects.order_by("-sequence").values_list("sequence", flat=True).first() or 0

    return read


@pytest.fixture
def admin_client(client_for, platform_admin):
    """A platform administrator signed in with both factors."""
    return client_for(platform_admin)


@pytest.fixture
def rate(db):
    return FeeRate.objects.create(card_class="debit", rate_bp=38, min_fee=10, max_fee=2000)


@pytest.fixture
def override(db):
    return WorkingDayOverride.objects.create(day=dt.date(2026, 10, 10), is_working=True, note="make-up day")


def fee_rate_form(**changes) -> dict:
    data = {"merchant": "", "card_class": "credit", "rate_bp": "60", "min_fee": "0", "max_fee": ""}
    data.update(changes)
    return data


# --- Fee rates ---------------------------------------------------------------------------------


def test_adding_a_default_fee_rate_writes_one_event(admin_client, platform_admin, last_sequence):
    before = last_sequence()
    response = admin_client.post(f"{FEE_RATES}add/", fee_rate_form())
    assert response.status_code == 302, response.content.decode()[:2000]
    rate = FeeRate.objects.get()
    [event] = new_events(before)
    assert (event.action, event.actor_id, event.organisation_id, event.object_type, event.object_id) == (
        "fee_rate.create",
        platform_admin.pk,
        platform_admin.organisation_id,
        "reconciliation.feerate",
        str(rate.pk),
    )
    assert event.details == {
        "admin": True,
        "object": "* credit 60bp",
        "fields": {"merchant": None, "card_class": "credit", "rate_bp": 60, "min_fee": 0, "max_fee": None},
    }


def test_a_merchant_fee_rate_event_belongs_to_the_merchant(admin_client, merchant_a, last_sequence):
    before = last_sequence()
    response = admin_client.post(f"{FEE_RATES}add/", fee_rate_form(merchant=str(merchant_a.pk), rate_bp="45"))
    assert response.status_code == 302, response.content.decode()[:2000]
    [event] = new_events(before)
    assert (event.action, event.organisation_id) == ("fee_rate.create", merchant_a.pk)
    assert event.details["fields"]["merchant"] == merchant_a.pk


def test_changing_a_fee_rate_writes_one_event_with_the_changed_fields(admin_client, rate, last_sequence):
    before = last_sequence()
    response = admin_client.post(
        f"{FEE_RATES}{rate.pk}/change/", fee_rate_form(card_class="debit", rate_bp="40", min_fee="10", max_fee="2500")
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    rate.refresh_from_db()
    assert (rate.rate_bp, rate.max_fee) == (40, 2500)
    [event] = new_events(before)
    assert (event.action, event.object_id) == ("fee_rate.update", str(rate.pk))
    assert event.details == {
        "admin": True,
        "object": "* debit 40bp",
        "changed": {"rate_bp": {"old": 38, "new": 40}, "max_fee": {"old": 2000, "new": 2500}},
    }


def test_deleting_a_fee_rate_writes_one_event_with_what_was_deleted(admin_client, rate, last_sequence):
    before = last_sequence()
    pk = rate.pk
    response = admin_client.post(f"{FEE_RATES}{pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not FeeRate.objects.exists()
    [event] = new_events(before)
    assert (event.action, event.object_type, event.object_id) == ("fee_rate.delete", "reconciliation.feerate", str(pk))
    assert event.details == {
        "admin": True,
        "object": "* debit 38bp",
        "fields": {"merchant": None, "card_class": "debit", "rate_bp": 38, "min_fee": 10, "max_fee": 2000},
    }


def test_the_delete_selected_action_writes_one_event_per_fee_rate(admin_client, rate, last_sequence):
    other = FeeRate.objects.create(card_class="credit", rate_bp=60)
    before = last_sequence()
    response = admin_client.post(
        FEE_RATES, {"action": "delete_selected", "_selected_action": [rate.pk, other.pk], "post": "yes"}
    )
    assert response.status_code == 302
    assert not FeeRate.objects.exists()
    assert [(e.action, e.object_id) for e in new_events(before)] == [
        ("fee_rate.delete", str(rate.pk)),
        ("fee_rate.delete", str(other.pk)),
    ]


def test_an_invalid_fee_rate_is_refused_and_not_audited(admin_client, rate, last_sequence):
    before = last_sequence()
    response = admin_client.post(
        f"{FEE_RATES}{rate.pk}/change/", fee_rate_form(card_class="debit", min_fee="500", max_fee="100")
    )
    assert response.status_code == 200
    rate.refresh_from_db()
    assert (rate.min_fee, rate.max_fee) == (10, 2000)
    assert new_events(before) == []


def test_a_user_without_admin_rights_changes_nothing_and_writes_no_event(
    client_for, acquirer_admin, rate, last_sequence
):
    acquirer_admin.is_staff = True
    acquirer_admin.save(update_fields=["is_staff"])
    client = client_for(acquirer_admin)
    before = last_sequence()
    assert client.post(f"{FEE_RATES}{rate.pk}/change/", fee_rate_form(card_class="debit")).status_code == 403
    assert client.post(f"{FEE_RATES}{rate.pk}/delete/", {"post": "yes"}).status_code == 403
    assert client.post(f"{FEE_RATES}add/", fee_rate_form()).status_code == 403
    rate.refresh_from_db()
    assert (FeeRate.objects.count(), rate.rate_bp) == (1, 38)
    assert new_events(before) == []


def test_the_change_is_rolled_back_when_the_audit_event_cannot_be_written(
    admin_client, rate, last_sequence, monkeypatch
):
    # given the audit helper fails
    def broken(**kwargs):
        raise RuntimeError("audit store unavailable")

    monkeypatch.setattr("reconciliation.services.reference.audit_record", broken)
    before = last_sequence()
    # when the rate is changed and another one deleted
    with pytest.raises(RuntimeError):
        admin_client.post(f"{FEE_RATES}{rate.pk}/change/", fee_rate_form(card_class="debit", rate_bp="99"))
    with pytest.raises(RuntimeError):
        admin_client.post(f"{FEE_RATES}{rate.pk}/delete/", {"post": "yes"})
    # then neither write survives: the audit is in the same transaction
    rate.refresh_from_db()
    assert rate.rate_bp == 38
    assert new_events(before) == []


# --- Working-day overrides ---------------------------------------------------------------------


def test_adding_a_working_day_override_writes_one_event(admin_client, platform_admin, last_sequence):
    before = last_sequence()
    response = admin_client.post(f"{OVERRIDES}add/", {"day": "2026-02-14", "is_working": "on", "note": "make-up"})
    assert response.status_code == 302, response.content.decode()[:2000]
    override = WorkingDayOverride.objects.get()
    [event] = new_events(before)
    assert (event.action, event.actor_id, event.organisation_id, event.object_type, event.object_id) == (
        "working_day_override.create",
        platform_admin.pk,
        platform_admin.organisation_id,
        "reconciliation.workingdayoverride",
        str(override.pk),
    )
    assert event.details == {
        "admin": True,
        "object": "2026-02-14 working",
        "fields": {"day": "2026-02-14", "is_working": True, "note": "make-up"},
    }


def test_changing_a_working_day_override_writes_one_event(admin_client, override, last_sequence):
    before = last_sequence()
    response = admin_client.post(f"{OVERRIDES}{override.pk}/change/", {"day": "2026-10-10", "note": "cancelled"})
    assert response.status_code == 302, response.content.decode()[:2000]
    override.refresh_from_db()
    assert override.is_working is False
    [event] = new_events(before)
    assert (event.action, event.object_id) == ("working_day_override.update", str(override.pk))
    assert event.details == {
        "admin": True,
        "object": "2026-10-10 holiday",
        "changed": {"is_working": {"old": True, "new": False}, "note": {"old": "make-up day", "new": "cancelled"}},
    }


def test_deleting_a_working_day_override_writes_one_event(admin_client, override, last_sequence):
    before = last_sequence()
    pk = override.pk
    response = admin_client.post(f"{OVERRIDES}{pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not WorkingDayOverride.objects.exists()
    [event] = new_events(before)
    assert (event.action, event.object_id) == ("working_day_override.delete", str(pk))
    assert event.details["fields"] == {"day": "2026-10-10", "is_working": True, "note": "make-up day"}


def test_a_password_only_admin_cannot_add_an_override(platform_admin, last_sequence):
    client = Client()
    login_password_only(client, platform_admin)
    before = last_sequence()
    response = client.post(f"{OVERRIDES}add/", {"day": "2026-02-14", "is_working": "on"})
    assert response.status_code == 302
    assert not WorkingDayOverride.objects.exists()
    assert new_events(before) == []
