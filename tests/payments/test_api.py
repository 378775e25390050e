from unittest import mock

import pytest
import time_machine
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

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


def _pending_refund(actor, original, amount: int):
    from refunds.services import refund_request

    with mock.patch("refunds.tasks.send_refund.delay"):
        return refund_request(actor=actor, original=original, amount=amount, reason="damaged")


def test_refundable_amount_subtracts_refunds_in_flight(client_for, operator_a, merchant_a, make_txn):
    from refunds.selectors import refundable_now

    original = make_txn(merchant_a, order_id="PAY1", amount=10000, refunded_amount=2500, txn_time=bj(2026, 3, 9, 9))
    _pending_refund(operator_a, original, 5000)
    client = client_for(operator_a)

    [item] = client.get("/api/v1/transactions/").json()["results"]
    detail = client.get(f"/api/v1/transactions/{original.pk}/").json()

    assert (item["refunded_amount"], item["refundable_amount"]) == (2500, 2500)
    assert (detail["refunded_amount"], detail["refundable_amount"]) == (2500, 2500)
    assert refundable_now(original) == 2500


def test_refundable_amount_is_zero_when_refunds_in_flight_hold_everything(client_for, operator_a, merchant_a, make_txn):
    original = make_txn(merchant_a, order_id="PAY1", amount=10000, txn_time=bj(2026, 3, 9, 9))
    _pending_refund(operator_a, original, 10000)
    detail = client_for(operator_a).get(f"/api/v1/transactions/{original.pk}/").json()
    assert (detail["refunded_amount"], detail["refundable_amount"]) == (0, 0)


def test_list_asks_for_refunds_in_flight_once_per_page(
    client_for, operator_a, merchant_a, make_txn, django_assert_max_num_queries
):
    client = client_for(operator_a)
    for n in range(2):
        _pending_refund(operator_a, make_txn(merchant_a, amount=10000, txn_time=bj(2026, 3, 9, 9, n)), 100 + n)
    client.get("/api/v1/transactions/")
    with CaptureQueriesContext(connection) as two:
        client.get("/api/v1/transactions/")
    for n in range(2, 6):
        _pending_refund(operator_a, make_txn(merchant_a, amount=10000, txn_time=bj(2026, 3, 9, 9, n)), 100 + n)
    with django_assert_max_num_queries(len(two)):
        results = client.get("/api/v1/transactions/").json()["results"]
    assert sorted(r["refundable_amount"] for r in results) == [10000 - 100 - n for n in reversed(range(6))]


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


# --- sort, today's settlement day and totals (the list follows the FilterSet like the pages) --------


def _ids(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [r["order_id"] for r in response.json()["results"]]


def _walk(client, url: str) -> tuple[list[str], list[dict]]:
    """Every order id of a list, following the next links, and each page's answer."""
    seen: list[str] = []
    pages: list[dict] = []
    while url:
        response = client.get(url)
        seen += _ids(response)
        pages.append(response.json())
        url = pages[-1]["next"]
    return seen, pages


@pytest.fixture
def amounts(merchant_a, make_txn):
    """Six payments a minute apart; two share an amount, so the id breaks the tie."""
    return [
        make_txn(merchant_a, order_id=f"S{i}", amount=amount, txn_time=bj(2026, 3, 9, 9, i))
        for i, amount in enumerate([500, 100, 300, 300, 200, 400])
    ]


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ("-amount", ["S0", "S5", "S3", "S2", "S4", "S1"]),
        ("amount", ["S1", "S4", "S2", "S3", "S5", "S0"]),
        ("txn_time", ["S0", "S1", "S2", "S3", "S4", "S5"]),
        ("-txn_time", ["S5", "S4", "S3", "S2", "S1", "S0"]),
        ("", ["S5", "S4", "S3", "S2", "S1", "S0"]),
    ],
)
def test_list_pages_through_in_the_requested_sort(client_for, operator_a, amounts, sort, expected):
    client = client_for(operator_a)
    seen, pages = _walk(client, f"/api/v1/transactions/?sort={sort}&page_size=2")
    assert seen == expected
    assert [len(p["results"]) for p in pages] == [2, 2, 2]
    assert pages[0]["previous"] is None and pages[-1]["next"] is None
    # previous leads back page by page
    assert _ids(client.get(pages[2]["previous"])) == expected[2:4]
    assert _ids(client.get(pages[1]["previous"])) == expected[0:2]


def test_list_sort_matches_the_history_page(client_for, operator_a, amounts):
    client = client_for(operator_a)
    page = client.get("/transactions/history/?sort=-amount")
    api = client.get("/api/v1/transactions/?sort=-amount")
    assert _ids(api) == [t.order_id for t in page.context["page"].rows]


def test_a_cursor_only_works_with_its_own_sort(client_for, operator_a, amounts):
    client = client_for(operator_a)
    first = client.get("/api/v1/transactions/?sort=-amount&page_size=2").json()
    cursor = first["next"].split("cursor=")[1].split("&")[0]
    message = "This cursor belongs to another sort order: start again from the first page."
    for query in (f"sort=amount&cursor={cursor}", f"cursor={cursor}"):
        response = client.get(f"/api/v1/transactions/?{query}")
        assert response.status_code == 400
        assert response.json()["error"]["fields"]["cursor"] == [message]
    assert _ids(client.get(f"/api/v1/transactions/?sort=-amount&page_size=2&cursor={cursor}")) == ["S3", "S2"]


def test_a_new_row_does_not_shift_the_next_page(client_for, operator_a, merchant_a, amounts, make_txn):
    client = client_for(operator_a)
    first = client.get("/api/v1/transactions/?sort=-amount&page_size=2").json()
    make_txn(merchant_a, order_id="HUGE", amount=99999, txn_time=bj(2026, 3, 10, 14))
    assert _ids(client.get(first["next"])) == ["S3", "S2"]


def test_totals_cover_the_whole_filter_on_every_page(client_for, operator_a, merchant_a, amounts, make_txn):
    make_txn(merchant_a, order_id="FAILED", amount=7000, status="failed", txn_time=bj(2026, 3, 9, 11))
    make_txn(merchant_a, order_id="OLD", amount=1, txn_time=bj(2026, 2, 1, 11))  # outside the default 7 days
    client = client_for(operator_a)
    expected = {"count": 7, "amount": 1800 + 7000, "success_count": 6, "success_amount": 1800}
    _seen, pages = _walk(client, "/api/v1/transactions/?page_size=3")
    assert [p["totals"] for p in pages] == [expected] * 3
    assert list(pages[0]) == ["next", "previous", "totals", "results"]
    failed = client.get("/api/v1/transactions/?status=failed").json()["totals"]
    assert failed == {"count": 1, "amount": 7000, "success_count": 0, "success_amount": 0}
    assert client.get("/api/v1/transactions/?order_id=NONE").json() == {
        "next": None,
        "previous": None,
        "totals": {"count": 0, "amount": 0, "success_count": 0, "success_amount": 0},
        "results": [],
    }


def test_totals_of_the_history_page_and_the_api_agree(client_for, operator_a, amounts):
    client = client_for(operator_a)
    page = client.get("/transactions/history/?amount_min=2&amount_max=4")
    api = client.get("/api/v1/transactions/?amount_min=2&amount_max=4").json()
    expected = {"count": 4, "amount": 1200, "success_count": 4, "success_amount": 1200}
    assert api["totals"] == page.context["totals"] == expected


@pytest.fixture
def settlement_days(merchant_a, make_txn):
    make_txn(merchant_a, order_id="YESTERDAYLATE", txn_time=bj(2026, 3, 9, 22, 59, 59))
    make_txn(merchant_a, order_id="TODAYFIRST", txn_time=bj(2026, 3, 9, 23, 0, 0))
    make_txn(merchant_a, order_id="TODAYNOON", amount=2500, txn_time=bj(2026, 3, 10, 12, 0, 0))


def test_today_is_the_today_page(client_for, operator_a, settlement_days):
    client = client_for(operator_a)
    today = client.get("/api/v1/transactions/?today=true")
    page = client.get("/transactions/")
    assert _ids(today) == ["TODAYNOON", "TODAYFIRST"] == [t.order_id for t in page.context["page"].rows]
    assert today.json()["totals"] == page.context["totals"]
    for value in ("1", "TRUE", "True"):
        assert _ids(client.get(f"/api/v1/transactions/?today={value}")) == ["TODAYNOON", "TODAYFIRST"]
    for query in ("today=false", "today=0", "today=", ""):
        assert _ids(client.get(f"/api/v1/transactions/?{query}")) == ["TODAYNOON", "TODAYFIRST", "YESTERDAYLATE"]


def test_today_after_the_cut_off_is_tomorrows_settlement_day(client_for, operator_a, merchant_a, settlement_days):
    from payments.models import Transaction

    late = bj(2026, 3, 10, 23, 10, 0)
    Transaction.objects.filter(order_id="TODAYFIRST").update(txn_time=late, settle_date="2026-03-11")
    with time_machine.travel(bj(2026, 3, 10, 23, 30, 0), tick=False):
        response = client_for(operator_a).get("/api/v1/transactions/?today=true&status=success")
    assert _ids(response) == ["TODAYFIRST"]


def test_today_with_sort_and_paging(client_for, operator_a, merchant_a, settlement_days):
    client = client_for(operator_a)
    seen, _pages = _walk(client, "/api/v1/transactions/?today=true&sort=amount&page_size=1")
    assert seen == ["TODAYNOON", "TODAYFIRST"]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("today=yes", "Enter true or false."),
        ("today=true&date_from=2026-03-01", "today=true cannot be combined with date_from, date_to or settle_date."),
        ("today=1&date_to=2026-03-10", "today=true cannot be combined with date_from, date_to or settle_date."),
        ("today=true&settle_date=2026-03-10", "today=true cannot be combined with date_from, date_to or settle_date."),
    ],
)
def test_today_refuses_what_it_cannot_mean(client_for, operator_a, query, message):
    client = client_for(operator_a)
    for url in (f"/api/v1/transactions/?{query}", f"/api/v1/transactions/export/?file_format=csv&{query}"):
        response = client.get(url)
        assert response.status_code == 400, url
        assert response.json()["error"]["fields"]["today"] == [message]


def test_today_export_holds_the_settlement_day_only(client_for, operator_a, settlement_days):
    response = client_for(operator_a).get("/api/v1/transactions/export/?file_format=csv&today=true")
    assert response.status_code == 200
    body = b"".join(response.streaming_content).decode("utf-8-sig")
    assert "TODAYNOON" in body and "TODAYFIRST" in body and "YESTERDAYLATE" not in body
    assert AuditEvent.objects.get(action="transaction.export").details["rows"] == 2


@pytest.mark.parametrize("value", ["0", "-5", "abc", "1.5", "9" * 5000])
def test_a_page_size_that_is_not_a_positive_number_is_a_400(client_for, operator_a, value):
    response = client_for(operator_a).get("/api/v1/transactions/", {"page_size": value})
    assert response.status_code == 400
    assert response.json()["error"]["fields"]["page_size"] == ["Enter a whole number of rows per page from 1 to 500."]


def test_a_page_size_above_the_maximum_is_capped(client_for, operator_a, merchant_a, make_txn):
    from payments.api.pagination import TransactionKeysetPagination

    client = client_for(operator_a)
    assert TransactionKeysetPagination.max_page_size == 500
    with mock.patch.object(TransactionKeysetPagination, "max_page_size", 2):
        for i in range(3):
            make_txn(merchant_a, order_id=f"C{i}", txn_time=bj(2026, 3, 9, 9, i))
        body = client.get("/api/v1/transactions/?page_size=1000").json()
    assert len(body["results"]) == 2 and body["next"]


def test_the_list_needs_a_fixed_number_of_queries(
    client_for, operator_a, merchant_a, make_txn, django_assert_max_num_queries
):
    """Session, user, second factor, the page of rows, the totals and the refunds in flight: not one per row."""
    client = client_for(operator_a)
    for i in range(3):
        make_txn(merchant_a, txn_time=bj(2026, 3, 9, 9, i))
    client.get("/api/v1/transactions/?sort=amount")
    with CaptureQueriesContext(connection) as few:
        client.get("/api/v1/transactions/?sort=amount")
    for i in range(3, 60):
        make_txn(merchant_a, txn_time=bj(2026, 3, 9, 10, i))
    with django_assert_max_num_queries(len(few)):
        body = client.get("/api/v1/transactions/?sort=amount").json()
    assert len(body["results"]) == 50 and body["totals"]["count"] == 60


def test_retrieve_is_not_limited_to_the_list_s_default_dates(client_for, operator_a, merchant_a, make_txn):
    old = make_txn(merchant_a, order_id="OLD", txn_time=bj(2025, 6, 1, 9))
    response = client_for(operator_a).get(f"/api/v1/transactions/{old.pk}/")
    assert response.status_code == 200 and response.json()["order_id"] == "OLD"


def test_schema_documents_sort_today_cursor_and_totals(client_for, operator_a):
    schema = client_for(operator_a).get("/api/schema/?format=json").json()
    operation = schema["paths"]["/api/v1/transactions/"]["get"]
    params = {p["name"]: p for p in operation["parameters"]}
    assert {"sort", "today", "cursor", "page_size"} <= set(params)
    assert set(params["sort"]["schema"]["enum"]) == {"-txn_time", "txn_time", "-amount", "amount"}
    assert params["today"]["schema"]["type"] == "boolean"
    ref = operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    page = schema["components"]["schemas"][ref]
    assert list(page["properties"]) == ["next", "previous", "totals", "results"]
    assert set(page["properties"]["totals"]["properties"]) == {"count", "amount", "success_count", "success_amount"}
    export = {p["name"] for p in schema["paths"]["/api/v1/transactions/export/"]["get"]["parameters"]}
    assert "today" in export


def test_the_api_help_page_documents_the_transaction_list(client_for, operator_a):
    client = client_for(operator_a)
    english = client.get("/help/api/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "today=true" in english and "sort=-amount" in english and "totals" in english
    assert "follow the next link" in english
    chinese = client.get("/help/api/", HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    assert "today=true" in chinese and "当前清算日" in chinese and "follow the next link" not in chinese
