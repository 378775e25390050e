"""Pages and API of settlement and reconciliation: scoping, permissions, download audit."""

from datetime import date

import pytest
from django.test import Client

from portal.audit.models import AuditEvent
from reconciliation.models import ReconciliationFile
from reconciliation.services import produce_acquirer_files, produce_merchant_files, settlement_close_day
from tests.factories import login_password_only

from .conftest import bj

DAY = date(2026, 3, 10)
PAGES = ["/settlement/", "/settlement/files/", "/settlement/statements/"]


@pytest.fixture
def produced(merchant_a, merchant_b, acquirer, make_txn, rates):
    make_txn(merchant_a, amount=12_345)
    make_txn(merchant_b, amount=67_890)
    settlement_close_day(actor=None, day=DAY, now=bj(2026, 3, 11, 1))
    produce_merchant_files(merchant_a, DAY)
    produce_merchant_files(merchant_b, DAY)
    produce_acquirer_files(acquirer, DAY)
    return {
        "a_zip": ReconciliationFile.objects.get(organisation=merchant_a, kind="zip"),
        "b_zip": ReconciliationFile.objects.get(organisation=merchant_b, kind="zip"),
        "clearing": ReconciliationFile.objects.get(organisation=acquirer, kind="clearing_csv", language="en"),
    }


def _url(file):
    return f"/settlement/files/{file.pk}/download/"


def _downloads():
    return AuditEvent.objects.filter(action="reconciliation.file_download").count()


@pytest.mark.parametrize("url", PAGES)
def test_anonymous_is_sent_to_login(client, db, url):
    response = client.get(url)
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


@pytest.mark.parametrize("url", PAGES)
def test_password_only_is_sent_to_second_factor(operator_a, url):
    client = Client()
    login_password_only(client, operator_a)
    response = client.get(url)
    assert response.status_code == 302 and response["Location"] == "/accounts/verify/"


@pytest.mark.parametrize("url", PAGES)
def test_missing_permission_is_403(client_for, admin_a, url):
    assert client_for(admin_a).get(url).status_code == 403


def test_overview_shows_own_merchant_only(client_for, operator_a, produced, merchant_a, merchant_b):
    response = client_for(operator_a).get("/settlement/")
    body = response.content.decode()
    assert response.status_code == 200
    assert merchant_a.code in body and merchant_b.code not in body
    assert "Asia/Shanghai" in body and "23:00" in body
    assert 'data-testid="acquirer-total"' not in body


def test_acquirer_sees_its_merchants_and_its_totals(client_for, acquirer_reviewer, produced, merchant_a, merchant_b):
    body = client_for(acquirer_reviewer).get("/settlement/").content.decode()
    assert merchant_a.code in body and merchant_b.code not in body
    assert 'data-testid="acquirer-total"' in body
    files = client_for(acquirer_reviewer).get("/settlement/files/?kind=clearing_csv").content.decode()
    assert produced["clearing"].name in files and produced["a_zip"].name not in files


def test_download_centre_lists_own_files_with_size_and_sha(client_for, operator_a, produced):
    body = client_for(operator_a).get("/settlement/files/").content.decode()
    assert produced["a_zip"].name in body and produced["a_zip"].sha256 in body
    assert produced["b_zip"].name not in body and produced["clearing"].name not in body
    assert "Asia/Shanghai" in body


def test_download_is_audited_and_regenerates_a_missing_file(client_for, operator_a, produced):
    # given: the file was lost from disk
    zfile = produced["a_zip"]
    original = zfile.path.read_bytes()
    zfile.path.unlink()

    # when
    response = client_for(operator_a).get(_url(zfile))

    # then
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == original
    assert response["Content-Disposition"] == f'attachment; filename="{zfile.name}"'
    event = AuditEvent.objects.get(action="reconciliation.file_download")
    assert event.actor_id == operator_a.pk and event.object_id == str(zfile.pk)
    assert event.details["sha256"] == zfile.sha256


@pytest.mark.parametrize("key", ["b_zip", "clearing"])
def test_other_organisations_file_is_404_without_audit(client_for, operator_a, produced, key):
    assert client_for(operator_a).get(_url(produced[key])).status_code == 404
    assert _downloads() == 0


def test_download_denials_leave_no_audit(client_for, admin_a, operator_a, produced):
    url = _url(produced["a_zip"])
    assert client_for(admin_a).get(url).status_code == 403
    assert Client().get(url).status_code == 302
    password_only = Client()
    login_password_only(password_only, operator_a)
    assert password_only.get(url).status_code == 302
    assert _downloads() == 0


def test_acquirer_downloads_its_merchants_zip_and_its_clearing_file(client_for, acquirer_reviewer, produced):
    client = client_for(acquirer_reviewer)
    assert client.get(_url(produced["a_zip"])).status_code == 200
    assert client.get(_url(produced["clearing"])).status_code == 200
    assert client.get(_url(produced["b_zip"])).status_code == 404
    assert _downloads() == 2


def test_api_settlements_are_scoped(client_for, operator_a, produced, merchant_a):
    data = client_for(operator_a).get("/api/v1/settlements/").json()
    assert [(r["merchant_code"], r["day"], r["payment_amount"]) for r in data["results"]] == [
        (merchant_a.code, "2026-03-10", 12_345)
    ]


def test_api_files_list_and_download(client_for, operator_a, produced):
    client = client_for(operator_a)
    names = {r["name"] for r in client.get("/api/v1/reconciliation-files/").json()["results"]}
    assert produced["a_zip"].name in names and produced["b_zip"].name not in names
    response = client.get(f"/api/v1/reconciliation-files/{produced['a_zip'].pk}/download/")
    assert response.status_code == 200 and b"".join(response.streaming_content)[:2] == b"PK"
    assert client.get(f"/api/v1/reconciliation-files/{produced['b_zip'].pk}/download/").status_code == 404
    assert _downloads() == 1


def test_api_denials(client_for, admin_a, operator_a, produced):
    assert client_for(admin_a).get("/api/v1/settlements/").status_code == 403
    assert client_for(admin_a).get(f"/api/v1/reconciliation-files/{produced['a_zip'].pk}/download/").status_code == 403
    assert Client().get("/api/v1/reconciliation-files/").status_code == 401
    password_only = Client()
    login_password_only(password_only, operator_a)
    assert password_only.get("/api/v1/settlements/").status_code == 401
    assert _downloads() == 0
