"""Audit log fixtures: a few events in each organisation, and helpers to count new events."""

import pytest

from portal.audit.models import AuditEvent
from portal.audit.services import audit_record


@pytest.fixture
def events(admin_a, admin_b, acquirer_admin):
    """One event in merchant A, one in merchant B, one in the acquirer, one with no organisation."""
    return {
        "a": audit_record(action="user.create", actor=admin_a, object_type="accounts.user", object_id=11),
        "b": audit_record(action="user.create", actor=admin_b, object_type="accounts.user", object_id=22),
        "acq": audit_record(action="organisation.update", actor=acquirer_admin, details={"field": "name"}),
        "none": audit_record(action="auth.login_failed", actor_repr="mallory", outcome="failure"),
    }


class NewEvents:
    """The audit events written since it was created (``with new_events() as new: ...``)."""

    def __init__(self):
        self.before = AuditEvent.objects.order_by("-sequence").values_list("sequence", flat=True).first() or 0

    @property
    def all(self) -> list[AuditEvent]:
        return list(AuditEvent.objects.filter(sequence__gt=self.before).order_by("sequence"))


@pytest.fixture
def new_events(db):
    return NewEvents
