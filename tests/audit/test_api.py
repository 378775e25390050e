"""The audit log through the REST API: same filters and scoping as the pages, and audited."""

import pytest
from django.test import Client

from tests.factories import login_password_only

pytestmark = pytest.mark.django_db

LIST = "/api/v1/audit-events/"


def item(event):
    return f"{LIST}{event.sequence}/"


@pytest.mark.parametrize("path", [LIST, "item"])
def test_anonymous_gets_401_and_nothing_is_audited(path, events, new_events):
    new = new_events()
    response = Client().get(item(events["a"]) if path == "item" else path)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"
    assert new.all == []


@pytest.mark.parametrize("path", [LIST, "item"])
def test_password_only_gets_401(path, auditor, events, new_events):
    client = Client()
    login_password_only(client, auditor)
    new = new_events()
    response = client.get(item(events["a"]) if path == "item" else path)
    assert response.status_code == 401
    assert new.all == []


@pytest.mark.parametrize("path", [LIST, "item"])
def test_missing_permission_gets_403(path, operator_a, events, client_for, new_events):
    client = client_for(operator_a)
    new = new_events()
    response = client.get(item(events["a"]) if path == "item" else path)
    assert response.status_code == 403
    assert new.all == []


def test_other_organisations_event_is_404(admin_a, events, client_for, new_events):
    client = client_for(admin_a)
    new = new_events()
    response = client.get(item(events["b"]))
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert new.all == []


def test_list_is_scoped_and_audited_as_an_api_view(acquirer_admin, events, client_for, new_events):
    client = client_for(acquirer_admin)
    new = new_events()
    response = client.get(LIST)
    assert response.status_code == 200
    assert [r["sequence"] for r in response.json()["results"]] == [events["acq"].sequence, events["a"].sequence]
    [event] = new.all
    assert (event.action, event.details) == ("audit.view", {"api": True})


def test_filters_are_the_pages_filters(auditor, events, acquirer, client_for, new_events):
    client = client_for(auditor)
    new = new_events()
    response = client.get(LIST, {"organisation": acquirer.code, "outcome": "success"})
    assert [r["sequence"] for r in response.json()["results"]] == [events["acq"].sequence]
    [event] = new.all
    assert event.action == "audit.filter"
    assert event.details == {"api": True, "filters": {"organisation": acquirer.code, "outcome": "success"}}


def test_invalid_filter_is_400_without_an_event(auditor, client_for, new_events):
    client = client_for(auditor)
    new = new_events()
    response = client.get(LIST, {"time_after": "yesterday"})
    assert response.status_code == 400
    assert "time_after" in response.json()["error"]["fields"]
    assert new.all == []


def test_time_filter_accepts_an_explicit_offset(auditor, events, client_for):
    client = client_for(auditor)
    after = events["acq"].occurred_at.isoformat()
    response = client.get(LIST, {"time_after": after})
    assert [r["sequence"] for r in response.json()["results"]][-1] == events["acq"].sequence


def test_retrieve_returns_every_field_and_is_audited(auditor, events, client_for, new_events):
    client = client_for(auditor)
    target = events["a"]
    new = new_events()
    response = client.get(item(target))
    assert response.status_code == 200
    body = response.json()
    assert body == {
        "sequence": target.sequence,
        "occurred_at": target.occurred_at.isoformat().replace("+00:00", "Z"),
        "actor": "a.admin",
        "organisation": target.organisation.code,
        "action": "user.create",
        "object_type": "accounts.user",
        "object_id": "11",
        "outcome": "success",
        "ip": None,
        "user_agent": "",
        "request_id": "",
        "details": {},
        "prev_hash": target.prev_hash,
        "hash": target.hash,
    }
    [event] = new.all
    assert (event.action, event.object_id, event.details) == ("audit.view_event", str(target.sequence), {"api": True})


def test_api_is_read_only(auditor, events, client_for, new_events):
    client = client_for(auditor)
    new = new_events()
    assert client.delete(item(events["a"])).status_code == 405
    assert client.post(LIST, {}).status_code == 405
    assert new.all == []
