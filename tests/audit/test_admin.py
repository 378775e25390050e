"""The Django admin shows audit events read-only, and browsing them writes one audit event per page."""

import pytest
from django.contrib import admin
from django.test import Client

from portal.audit.admin import AuditEventAdmin
from portal.audit.models import AuditEvent
from tests.factories import UserFactory, login_password_only

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_auditor(platform):
    """A platform administrator who is also an auditor: the Django admin's audit pages need both."""
    return UserFactory(
        organisation=platform, username="plat.auditor", roles=["platform_admin", "auditor"], is_staff=True
    )


@pytest.mark.parametrize("page", ["list", "detail"])
def test_a_platform_admin_without_the_auditor_role_may_not_read_the_log(
    page, platform_admin, events, client_for, new_events
):
    # given a platform administrator (every admin model permission) who is not an auditor
    client = client_for(platform_admin)
    new = new_events()
    # when they open an audit page of the admin
    response = client.get(ADMIN_LIST if page == "list" else admin_detail(events["a"]))
    # then it is refused (no job need: security D4) and nothing is audited
    assert response.status_code == 403
    assert new.all == []
    assert "audit" not in {app["app_label"] for app in client.get("/admin/").context["app_list"]}


def test_admin_offers_no_add_change_or_delete(rf, admin_auditor):
    model_admin = admin.site._registry[AuditEvent]
    request = rf.get("/admin/audit/auditevent/")
    request.user = admin_auditor
    assert isinstance(model_admin, AuditEventAdmin)
    assert model_admin.has_add_permission(request) is False
    assert model_admin.has_change_permission(request) is False
    assert model_admin.has_delete_permission(request) is False
    assert model_admin.get_actions(request) == {}
    assert model_admin.list_display == ("sequence", "occurred_at", "actor_repr", "action", "outcome")


def test_admin_change_form_is_refused_on_post(admin_auditor, events, client_for, new_events):
    admin_auditor.is_superuser = True
    admin_auditor.save(update_fields=["is_superuser"])
    client = client_for(admin_auditor)
    target = events["a"]
    listing = client.get("/admin/audit/auditevent/")
    assert listing.status_code == 200
    assert client.get(f"/admin/audit/auditevent/{target.pk}/change/").status_code == 200
    response = client.post(f"/admin/audit/auditevent/{target.pk}/change/", {"action": "forged"})
    assert response.status_code == 403
    assert client.post(f"/admin/audit/auditevent/{target.pk}/delete/", {"post": "yes"}).status_code == 403
    assert AuditEvent.objects.get(pk=target.pk).action == "user.create"


# --- Browsing the admin's audit pages is itself audited (security D4) -------------------------

ADMIN_LIST = "/admin/audit/auditevent/"


def admin_detail(event) -> str:
    return f"/admin/audit/auditevent/{event.pk}/change/"


def admin_shown_sequences(response) -> set[int]:
    return {event.sequence for event in response.context["cl"].result_list}


def test_admin_list_writes_one_audit_view_event(admin_auditor, events, client_for, new_events):
    # given a platform administrator signed in with both factors
    client = client_for(admin_auditor)
    new = new_events()
    # when they open the audit event list in the Django admin
    response = client.get(ADMIN_LIST)
    # then exactly one audit.view event is written, in their name, and the page did not show it
    assert response.status_code == 200
    [event] = new.all
    assert (event.action, event.actor_id, event.organisation_id, event.outcome, event.object_type) == (
        "audit.view",
        admin_auditor.pk,
        admin_auditor.organisation_id,
        "success",
        "",
    )
    assert event.details == {"admin": True, "page": "1"}
    assert admin_shown_sequences(response) == {e.sequence for e in events.values()}


def test_each_admin_list_view_writes_its_own_event(admin_auditor, events, client_for, new_events):
    client = client_for(admin_auditor)
    new = new_events()
    assert client.get(ADMIN_LIST).status_code == 200
    assert client.get(ADMIN_LIST).status_code == 200
    assert [e.action for e in new.all] == ["audit.view", "audit.view"]


def test_filtered_admin_list_writes_one_audit_filter_event(admin_auditor, events, client_for, new_events):
    client = client_for(admin_auditor)
    new = new_events()
    response = client.get(ADMIN_LIST, {"outcome__exact": "success", "q": "user.create"})
    assert response.status_code == 200
    assert admin_shown_sequences(response) == {events["a"].sequence, events["b"].sequence}
    [event] = new.all
    assert event.action == "audit.filter"
    assert event.details == {"admin": True, "page": "1", "filters": {"outcome__exact": "success", "q": "user.create"}}


def test_admin_detail_writes_one_audit_view_event_event(admin_auditor, events, client_for, new_events):
    client = client_for(admin_auditor)
    target = events["acq"]
    new = new_events()
    response = client.get(admin_detail(target))
    assert response.status_code == 200
    assert "organisation.update" in response.content.decode()
    [event] = new.all
    assert (event.action, event.object_type, event.object_id, event.actor_id, event.details) == (
        "audit.view_event",
        "audit.auditevent",
        str(target.sequence),
        admin_auditor.pk,
        {"admin": True},
    )


def test_admin_detail_of_an_unknown_event_writes_nothing(admin_auditor, events, client_for, new_events):
    client = client_for(admin_auditor)
    new = new_events()
    response = client.get("/admin/audit/auditevent/999999/change/")
    assert response.status_code == 302
    assert new.all == []


@pytest.mark.parametrize("page", ["list", "detail"])
def test_password_only_admin_is_refused_and_nothing_is_audited(page, admin_auditor, events, new_events):
    # given a platform administrator who has passed the password step only
    client = Client()
    login_password_only(client, admin_auditor)
    new = new_events()
    # when they open an audit page of the admin
    response = client.get(ADMIN_LIST if page == "list" else admin_detail(events["a"]))
    # then they are sent away and no event is written
    assert response.status_code == 302
    assert new.all == []


@pytest.mark.parametrize("page", ["list", "detail"])
def test_anonymous_is_refused_and_nothing_is_audited(page, events, new_events):
    new = new_events()
    response = Client().get(ADMIN_LIST if page == "list" else admin_detail(events["a"]))
    assert response.status_code == 302
    assert new.all == []


@pytest.mark.parametrize("page", ["list", "detail"])
def test_staff_without_admin_permission_is_refused_and_nothing_is_audited(
    page, auditor, events, client_for, new_events
):
    # given a staff user without the platform administrator role (no admin model permission)
    auditor.is_staff = True
    auditor.save(update_fields=["is_staff"])
    client = client_for(auditor)
    new = new_events()
    # when they open an audit page of the admin
    response = client.get(ADMIN_LIST if page == "list" else admin_detail(events["a"]))
    # then it is refused and nothing is audited
    assert response.status_code == 403
    assert new.all == []


def test_refused_post_to_the_admin_detail_writes_nothing(admin_auditor, events, client_for, new_events):
    client = client_for(admin_auditor)
    new = new_events()
    response = client.post(admin_detail(events["a"]), {"action": "forged"})
    assert response.status_code == 403
    assert new.all == []
