import pytest

from portal.audit.services import audit_record, audit_verify_chain

pytestmark = pytest.mark.django_db


def test_anonymous_home_redirects_to_login(client):
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_signed_in_user_sees_home(client_for, admin_a):
    response = client_for(admin_a).get("/")
    assert response.status_code == 200
    assert "a.admin" in response.content.decode()


def test_chain_verifies_and_detects_nothing_wrong(admin_a):
    audit_record(action="test.one", actor=admin_a)
    audit_record(action="test.two", actor=admin_a, details={"password": "x", "note": "card 6222021234567890123"})
    report = audit_verify_chain()
    assert report.ok and report.count >= 2
