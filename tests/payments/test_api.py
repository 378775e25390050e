import pytest
import time_machine
from django.test import Client

from portal.audit.models import AuditEvent
from tests.factories import UserFactory, login_password_only

from .conftest import PAN_A, bj

pytestmark = pytest.mark.django_db

NOW = bj(2026, 3, 10, 15, 0, 0)


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def operator_b(merchant_b):
    return UserFactory(organisation=merchant_b, username="b.operator", roles=["merchant_operator"])


def test_list_has_snake_case_fields_and_fen_amounts(client_for, operator_a, merchant_a, make_txn):
    original = make_txn(merchant_a, order_id="PAY1", amount=10000, refunded_amount=2500, txn_time=bj(2026, 3, 9, 9))
    response = client_for(operator_a).get("/api/v1/transactions/")
    assert response.status_code == 200
    [item] = response.json()["results"]
    assert item["id"] == original.pk
    assert item["merchant"] == merchant_a.code
    assert item["order_id"] == "PAY1"
    assert (item["amount"], item["refunded_amount"], item["refundable_amount"]) == (10000, 2500, 7500)
    assert item["card_masked"] == "622202*********0128"
    assert item["status"] == "success"
    assert "card_hash" not in item


def test_filters_are_the_pages_filters(client_for, operator_a, merchant_a, make_txn):
    make_txn(merchant_a, order_id="A1", status="failed", txn_time=bj(2026, 3, 9, 9))
    make_txn(merchant_a, order_id="A2", txn_time=bj(2026, 3, 9, 10))
    make_txn(merchant_a, order_id="A3", txn_time=bj(2026, 1, 9, 10))
    client = client_for(operator_a)
    assert [r["order_id"] for r in client.get("/api/v1/transactions/?status=failed").json()["results"]] == ["A1"]
    assert [r["order_id"] for r in client.get("/api/v1/transactions/").json()["results"]] == ["A2", "A1"]
    ranged = client.get("/api/v1/transactions/?date_from=2026-01-01&date_to=2026-01-31").json()["results"]
    assert [r["order_id"] for r in ranged] == ["A3"]
    assert client.get("/api/v1/transactions/?order_id=A3").json()["results"][0]["order_id"] == "A3"


def test_page_size_and_cursor(client_for, operator_a, merchant_a, make_txn):
    for i in range(5):
        make_txn(merchant_a, order_id=f"P{i}", txn_time=bj(2026, 3, 9, 9, i))
    client = client_for(operator_a)
    first = client.get("/api/v1/transactions/?page_size=2").json()
    assert [r["order_id"] for r in first["results"]] == ["P4", "P3"]
    second = client.get(first["next"]).json()
    assert [r["order_id"] for r in second["results"]] == ["P2", "P1"]


def test_one_year_cap_is_a_400(client_for, operator_a):
    response = client_for(operator_a).get("/api/v1/transactions/?date_from=2024-01-01&date_to=2026-01-01")
    assert response.status_code == 400
    assert response.json()["error"]["fields"]["date_to"] == [
        "A query can cover at most one year. Narrow the date range and search again."
    ]


def test_full_card_number_in_the_query_string_is_refused(client_for, operator_a):
    response = client_for(operator_a).get(f"/api/v1/transactions/?card={PAN_A}")
    assert response.status_code == 400
    assert PAN_A not in response.content.decode()


def test_card_ref_exchange_then_search(client_for, operator_a, merchant_a, make_txn):
    make_txn(merchant_a, order_id="CARDA", txn_time=bj(2026, 3, 9, 9))
    make_txn(merchant_a, order_id="NOCARD", pan=None, txn_time=bj(2026, 3, 9, 9))
    client = client_for(operator_a)
    ref = client.post("/api/v1/transactions/card-ref/", {"card_number": PAN_A}, content_type="application/json")
    assert ref.status_code == 200
    body = ref.json()
    assert body["card_masked"] == "622202*********0128" and PAN_A not in ref.content.decode()
    found = client.get("/api/v1/transactions/", {"card_ref": body["card_ref"]}).json()["results"]
    assert [r["order_id"] for r in found] == ["CARDA"]


def test_other_organisations_transaction_is_404(client_for, operator_a, merchant_b, make_txn):
    other = make_txn(merchant_b)
    response = client_for(operator_a).get(f"/api/v1/transactions/{other.pk}/")
    assert response.status_code == 404


def test_scoping_on_the_list(client_for, operator_b, merchant_a, merchant_b, make_txn):
    make_txn(merchant_a, order_id="A1", txn_time=bj(2026, 3, 9, 9))
    make_txn(merchant_b, order_id="B1", txn_time=bj(2026, 3, 9, 9))
    results = client_for(operator_b).get("/api/v1/transactions/").json()["results"]
    assert [r["order_id"] for r in results] == ["B1"]


def test_missing_permission_is_403(client_for, admin_a):
    assert client_for(admin_a).get("/api/v1/transactions/").status_code == 403
    assert client_for(admin_a).get("/api/v1/merchants/").status_code == 403


def test_anonymous_and_password_only_are_401(operator_a):
    assert Client().get("/api/v1/transactions/").status_code == 401
    client = Client()
    login_password_only(client, operator_a)
    assert client.get("/api/v1/transactions/").status_code == 401


def test_merchants_endpoint_for_an_acquirer(client_for, acquirer_reviewer, merchant_a, merchant_b):
    client = client_for(acquirer_reviewer)
    results = client.get("/api/v1/merchants/").json()["results"]
    assert [(m["code"], m["user_count"], m["mcc"]) for m in results] == [(merchant_a.code, 0, "5311")]
    assert client.get(f"/api/v1/merchants/{merchant_b.pk}/").status_code == 404


def test_api_export_is_audited(client_for, operator_a, merchant_a, make_txn):
    make_txn(merchant_a, order_id="A1", txn_time=bj(2026, 3, 9, 9))
    response = client_for(operator_a).get("/api/v1/transactions/export/?file_format=csv")
    assert response.status_code == 200
    body = b"".join(response.streaming_content).decode("utf-8-sig")
    assert "A1" in body
    assert AuditEvent.objects.get(action="transaction.export").details["rows"] == 1


def test_api_export_of_zero_rows_is_a_400(client_for, operator_a):
    response = client_for(operator_a).get("/api/v1/transactions/export/?file_format=csv")
    assert response.status_code == 400
    assert not AuditEvent.objects.filter(action="transaction.export").exists()


def test_schema_lists_the_endpoints(client_for, operator_a):
    schema = client_for(operator_a).get("/api/schema/?format=json").json()
    assert {"/api/v1/transactions/", "/api/v1/transactions/{id}/", "/api/v1/merchants/"} <= set(schema["paths"])
    params = {p["name"] for p in schema["paths"]["/api/v1/transactions/"]["get"]["parameters"]}
    assert {"order_id", "query_id", "txn_type", "status", "date_from", "date_to", "merchant", "page_size"} <= params
