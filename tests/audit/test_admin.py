"""The Django admin shows audit events read-only."""

import pytest
from django.contrib import admin

from portal.audit.admin import AuditEventAdmin
from portal.audit.models import AuditEvent

pytestmark = pytest.mark.django_db


def test_admin_offers_no_add_change_or_delete(rf, platform_admin):
    model_admin = admin.site._registry[AuditEvent]
    request = rf.get("/admin/audit/auditevent/")
    request.user = platform_admin
    assert isinstance(model_admin, AuditEventAdmin)
    assert model_admin.has_add_permission(request) is False
    assert model_admin.has_change_permission(request) is False
    assert model_admin.has_delete_permission(request) is False
    assert model_admin.get_actions(request) == {}
    assert model_admin.list_display == ("sequence", "occurred_at", "actor_repr", "action", "outcome")


def test_admin_change_form_is_refused_on_post(platform_admin, events, client_for, new_events):
    platform_admin.is_superuser = True
    platform_admin.save(update_fields=["is_superuser"])
    client = client_for(platform_admin)
    target = events["a"]
    listing = client.get("/admin/audit/auditevent/")
    assert listing.status_code == 200
    assert client.get(f"/admin/audit/auditevent/{target.pk}/change/").status_code == 200
    response = client.post(f"/admin/audit/auditevent/{target.pk}/change/", {"action": "forged"})
    assert response.status_code == 403
    assert client.post(f"/admin/audit/auditevent/{target.pk}/delete/", {"post": "yes"}).status_code == 403
    assert AuditEvent.objects.get(pk=target.pk).action == "user.create"
