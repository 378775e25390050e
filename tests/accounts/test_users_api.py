"""/api/v1/users/: read-only, same scoping and FilterSet as the user list page."""

from __future__ import annotations

import pytest
from django.test import Client

from portal.accounts.services import user_disable
from portal.audit.models import AuditEvent
from tests.factories import login_password_only

pytestmark = pytest.mark.django_db

LIST = "/api/v1/users/"


def detail(user) -> str:
    return f"/api/v1/users/{user.pk}/"


def usernames(response) -> list[str]:
    return [row["username"] for row in response.json()["results"]]


def test_list_shows_only_the_admins_users(admin_a, operator_a, reviewer_a, admin_b, acquirer_admin, client_for):
    response = client_for(admin_a).get(LIST)

    assert response.status_code == 200
    assert usernames(response) == ["a.admin", "a.operator", "a.reviewer"]
    assert response.json()["count"] == 3


def test_acquirer_admin_lists_only_its_own_users(acquirer_admin, acquirer_reviewer, operator_a, client_for):
    response = client_for(acquirer_admin).get(LIST)

    assert usernames(response) == ["acq.admin", "acq.reviewer"]


def test_platform_admin_lists_everyone(platform_admin, admin_a, admin_b, acquirer_admin, client_for):
    response = client_for(platform_admin).get(LIST)

    assert usernames(response) == ["a.admin", "acq.admin", "b.admin", "plat.admin"]


def test_row_shape_masks_the_phone(admin_a, operator_a, client_for):
    row = client_for(admin_a).get(detail(operator_a)).json()

    assert row["username"] == "a.operator"
    assert row["roles"] == ["merchant_operator"]
    assert row["status"] == "active"
    assert row["phone"] == operator_a.masked_phone
    assert operator_a.phone not in str(row)
    assert row["organisation"]["id"] == operator_a.organisation_id
    assert "password" not in row


def test_filters_match_the_ui(admin_a, operator_a, reviewer_a, client_for):
    client = client_for(admin_a)
    user_disable(actor=admin_a, user=reviewer_a)

    assert usernames(client.get(LIST, {"role": "merchant_operator"})) == ["a.operator"]
    assert usernames(client.get(LIST, {"q": "REVIEW"})) == ["a.reviewer"]
    assert usernames(client.get(LIST, {"status": "disabled"})) == ["a.reviewer"]
    assert usernames(client.get(LIST, {"status": "active"})) == ["a.admin", "a.operator"]


def test_invalid_filter_value_is_400(admin_a, client_for):
    response = client_for(admin_a).get(LIST, {"role": "nonsense"})

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid"


def test_other_organisations_user_is_404(admin_a, admin_b, client_for):
    response = client_for(admin_a).get(detail(admin_b))

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_acquirer_admin_gets_404_for_its_merchants_user(acquirer_admin, operator_a, client_for):
    assert client_for(acquirer_admin).get(detail(operator_a)).status_code == 404


def test_anonymous_is_401(operator_a):
    response = Client().get(LIST)

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"
    assert Client().get(detail(operator_a)).status_code == 401


def test_password_only_session_is_401(admin_a):
    client = Client()
    login_password_only(client, admin_a)

    assert client.get(LIST).status_code == 401


def test_missing_permission_is_403(operator_a, client_for):
    client = client_for(operator_a)

    assert client.get(LIST).status_code == 403
    assert client.get(detail(operator_a)).status_code == 403


def test_api_is_read_only(admin_a, operator_a, client_for):
    client = client_for(admin_a)
    before = AuditEvent.objects.count()

    assert client.post(LIST, {"username": "x"}, content_type="application/json").status_code == 405
    assert client.patch(detail(operator_a), {"first_name": "x"}, content_type="application/json").status_code == 405
    assert client.delete(detail(operator_a)).status_code == 405

    operator_a.refresh_from_db()
    assert operator_a.first_name == "Test"
    assert AuditEvent.objects.count() == before


def test_list_query_count_is_flat(admin_a, merchant_a, client_for, django_assert_max_num_queries):
    from tests.factories import UserFactory

    client = client_for(admin_a)
    for _ in range(15):
        UserFactory(organisation=merchant_a, roles=["merchant_operator", "auditor"])
    client.get(LIST)

    with django_assert_max_num_queries(11):
        response = client.get(LIST)

    assert response.json()["count"] == 16
