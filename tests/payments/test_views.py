import re
from unittest import mock
from urllib.parse import parse_qs, urlparse

import pytest
import time_machine
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from payments.models import Transaction
from portal.audit.models import AuditEvent
from tests.factories import UserFactory, login_password_only

from .conftest import PAN_A, PAN_B, bj

pytestmark = pytest.mark.django_db

NOW = bj(2026, 3, 10, 15, 0, 0)  # settlement day 2026-03-10


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def operator_b(merchant_b):
    return UserFactory(organisation=merchant_b, username="b.operator", roles=["merchant_operator"])


def _order_ids(response) -> set[str]:
    return {t.order_id for t in response.context["page"].rows}


# --- access -------------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["/transactions/", "/transactions/history/", "/transactions/export/?file_format=csv"])
def test_anonymous_is_sent_to_login(client, url):
    response = client.get(url)
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


@pytest.mark.parametrize("url", ["/transactions/", "/transactions/history/", "/transactions/merchants/"])
def test_password_only_is_sent_to_second_factor(operator_a, url):
    client = Client()
    login_password_only(client, operator_a)
    response = client.get(url)
    assert response.status_code == 302 and response["Location"] == "/accounts/verify/"


def test_without_permission_is_forbidden_and_leaves_no_trace(client_for, admin_a, operator_a, make_txn, merchant_a):
    txn = make_txn(merchant_a)
    client = client_for(admin_a)  # merchant admin: users, not transactions
    events = AuditEvent.objects.count()
    for url in ("/transactions/", "/transactions/history/", f"/transactions/{txn.pk}/", "/transactions/merchants/"):
        assert client.get(url).status_code == 403, url
    assert client.get("/transactions/export/?file_format=csv&scope=history").status_code == 403
    assert AuditEvent.objects.count() == events


def test_export_needs_the_export_permission(client_for, acquirer_admin):
    response = client_for(acquirer_admin).get("/transactions/export/?file_format=csv")
    assert response.status_code == 403


def test_another_merchants_transaction_is_404(client_for, operator_a, merchant_b, make_txn):
    other = make_txn(merchant_b)
    assert client_for(operator_a).get(f"/transactions/{other.pk}/").status_code == 404


def test_another_merchant_is_never_listed(client_for, operator_a, operator_b, merchant_a, merchant_b, make_txn):
    make_txn(merchant_a, order_id="MINE0001")
    make_txn(merchant_b, order_id="THEIRS0001")
    response = client_for(operator_a).get("/transactions/history/")
    assert _order_ids(response) == {"MINE0001"}
    assert response.context["totals"]["count"] == 1


# --- today and history ---------------------------------------------------------------------------


def test_today_shows_the_current_settlement_day_only(client_for, operator_a, merchant_a, make_txn):
    make_txn(merchant_a, order_id="YESTERDAYLATE", txn_time=bj(2026, 3, 9, 22, 59, 59))
    make_txn(merchant_a, order_id="TODAYFIRST", txn_time=bj(2026, 3, 9, 23, 0, 0))
    make_txn(merchant_a, order_id="TODAYNOON", txn_time=bj(2026, 3, 10, 12, 0, 0))
    response = client_for(operator_a).get("/transactions/")
    assert response.status_code == 200
    assert _order_ids(response) == {"TODAYFIRST", "TODAYNOON"}
    assert "2026-03-10" in response.content.decode()


def test_history_defaults_to_the_last_seven_days(client_for, operator_a, merchant_a, make_txn):
    make_txn(merchant_a, order_id="EIGHTDAYS", txn_time=bj(2026, 3, 3, 23, 59, 59))
    make_txn(merchant_a, order_id="SEVENDAYS", txn_time=bj(2026, 3, 4, 0, 0, 0))
    make_txn(merchant_a, order_id="NOW", txn_time=bj(2026, 3, 10, 14, 0, 0))
    response = client_for(operator_a).get("/transactions/history/")
    assert _order_ids(response) == {"SEVENDAYS", "NOW"}


def test_more_than_one_year_is_refused_with_a_clear_message(client_for, operator_a, merchant_a, make_txn):
    make_txn(merchant_a)
    response = client_for(operator_a).get("/transactions/history/?date_from=2025-03-01&date_to=2026-03-01")
    assert response.status_code == 200
    assert response.context["invalid"] is True
    assert "page" not in response.context
    assert "A query can cover at most one year." in response.content.decode()


def test_exactly_one_year_is_accepted(client_for, operator_a):
    response = client_for(operator_a).get("/transactions/history/?date_from=2025-03-11&date_to=2026-03-10")
    assert response.status_code == 200 and "invalid" not in response.context


def test_one_year_message_in_chinese(client_for, operator_a):
    client = client_for(operator_a)
    client.cookies["portal_language"] = "zh-hans"
    response = client.get(
        "/transactions/history/?date_from=2025-01-01&date_to=2026-03-01", HTTP_ACCEPT_LANGUAGE="zh-hans"
    )
    assert response.context["invalid"] is True
    assert response.context["LANGUAGE_CODE"] == "zh-hans"


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("order_id=WANTED0001", {"WANTED0001"}),
        ("query_id=202603100000000000777", {"BYQUERYID"}),
        ("txn_type=04", {"REFUND"}),
        ("status=failed", {"FAILED"}),
        ("channel=08", {"MOBILE"}),
        ("amount_min=500.00&amount_max=600", {"BIG"}),
        ("amount_max=0.99", {"SMALL"}),
        ("card=3337", {"CARDB"}),
    ],
)
def test_each_filter_narrows(client_for, operator_a, merchant_a, make_txn, query, expected):
    make_txn(merchant_a, order_id="WANTED0001")
    make_txn(merchant_a, order_id="BYQUERYID", query_id="202603100000000000777")
    make_txn(merchant_a, order_id="REFUND", txn_type="04")
    make_txn(merchant_a, order_id="FAILED", status="failed", resp_code="61")
    make_txn(merchant_a, order_id="MOBILE", channel_type="08")
    make_txn(merchant_a, order_id="BIG", amount=55000)
    make_txn(merchant_a, order_id="SMALL", amount=99)
    make_txn(merchant_a, order_id="CARDB", pan=PAN_B)
    response = client_for(operator_a).get(f"/transactions/history/?{query}")
    assert _order_ids(response) == expected


def test_totals_cover_the_whole_filter_not_the_page(client_for, operator_a, merchant_a, make_txn):
    for i in range(60):
        make_txn(merchant_a, amount=100 + i, txn_time=bj(2026, 3, 9, 10, 0, i))
    make_txn(merchant_a, amount=5000, status="failed", txn_time=bj(2026, 3, 9, 11, 0, 0))
    response = client_for(operator_a).get("/transactions/history/")
    totals = response.context["totals"]
    assert len(response.context["page"].rows) == 50
    assert totals["count"] == 61
    assert totals["amount"] == sum(100 + i for i in range(60)) + 5000
    assert totals["success_count"] == 60
    assert "127.70 yuan" in response.content.decode()  # 12770 fen


def test_keyset_pages_are_complete_and_stable(client_for, operator_a, merchant_a, make_txn):
    for i in range(120):
        make_txn(merchant_a, order_id=f"P{i:04d}", txn_time=bj(2026, 3, 8, 10, i // 60, i % 60))
    # Two rows with the same time: the id breaks the tie.
    make_txn(merchant_a, order_id="TIE1", txn_time=bj(2026, 3, 8, 10, 0, 30))
    client = client_for(operator_a)
    seen: list[str] = []
    url = "/transactions/history/"
    first = client.get(url)
    page_two_url = first.context["next_url"]
    while url:
        response = client.get(url)
        seen += [t.order_id for t in response.context["page"].rows]
        url = response.context["next_url"]
    assert len(seen) == 121 and len(set(seen)) == 121
    # A new transaction arriving meanwhile does not shift the next page.
    before = [t.order_id for t in client.get(page_two_url).context["page"].rows]
    make_txn(merchant_a, order_id="NEWEST", txn_time=bj(2026, 3, 10, 14, 59, 0))
    after = client.get(page_two_url)
    assert [t.order_id for t in after.context["page"].rows] == before
    # And "previous" leads back to the first page.
    back = client.get(after.context["prev_url"])
    assert [t.order_id for t in back.context["page"].rows] == [t.order_id for t in first.context["page"].rows]


def test_sort_by_amount(client_for, operator_a, merchant_a, make_txn):
    for amount in (300, 100, 200):
        make_txn(merchant_a, order_id=f"A{amount}", amount=amount)
    response = client_for(operator_a).get("/transactions/history/?sort=-amount")
    assert [t.order_id for t in response.context["page"].rows] == ["A300", "A200", "A100"]


def test_full_card_search_never_puts_the_number_in_a_url_or_page(client_for, operator_a, merchant_a, make_txn):
    make_txn(merchant_a, order_id="CARDA", pan=PAN_A)
    make_txn(merchant_a, order_id="CARDB", pan=PAN_B)
    make_txn(merchant_a, order_id="SAMELAST4ELSEWHERE", pan="6217001111111110128")
    client = client_for(operator_a)
    response = client.post("/transactions/history/", {"card": "6222 0212 3456 7890 128", "status": ""})
    assert response.status_code == 302
    location = response["Location"]
    assert PAN_A not in location and "card_ref" in parse_qs(urlparse(location).query)
    page = client.get(location)
    body = page.content.decode()
    assert _order_ids(page) == {"CARDA"}
    assert PAN_A not in body
    assert 'value="622202*********0128"' in body
    # Searching again with the masked number shown keeps the same card.
    again = client.post(
        "/transactions/history/",
        {"card": "622202*********0128", "card_ref": page.context["filterset"].data["card_ref"]},
    )
    assert _order_ids(client.get(again["Location"])) == {"CARDA"}


def test_full_card_number_in_a_get_is_replaced(client_for, operator_a, merchant_a, make_txn):
    make_txn(merchant_a, order_id="CARDA", pan=PAN_A)
    response = client_for(operator_a).get(f"/transactions/history/?card={PAN_A}")
    assert response.status_code == 302 and PAN_A not in response["Location"]


def test_invalid_full_card_number_is_not_echoed(client_for, operator_a):
    client = client_for(operator_a)
    response = client.post("/transactions/history/", {"card": "6222021234567890129"}, follow=True)
    body = response.content.decode()
    assert "6222021234567890129" not in body
    assert "This card number is not valid." in body


def test_list_page_query_count_is_pinned(client_for, operator_a, merchant_a, make_txn, django_assert_max_num_queries):
    for i in range(60):
        make_txn(merchant_a, txn_time=bj(2026, 3, 9, 10, 0, i))
    client = client_for(operator_a)
    with django_assert_max_num_queries(10):
        response = client.get("/transactions/history/")
    assert response.status_code == 200


# --- acquirer ----------------------------------------------------------------------------------


def test_acquirer_sees_its_merchants_with_a_merchant_filter(
    client_for, acquirer_reviewer, acquirer, merchant_a, merchant_b, make_txn, django_assert_max_num_queries
):
    from tests.factories import MerchantFactory

    sibling = MerchantFactory(acquirer=acquirer)
    make_txn(merchant_a, order_id="A1")
    make_txn(sibling, order_id="S1")
    make_txn(merchant_b, order_id="B1")
    client = client_for(acquirer_reviewer)
    with django_assert_max_num_queries(10):
        response = client.get("/transactions/history/")
    assert _order_ids(response) == {"A1", "S1"}
    assert _order_ids(client.get(f"/transactions/history/?merchant={sibling.code}")) == {"S1"}
    # Another acquirer's merchant is not a valid choice.
    refused = client.get(f"/transactions/history/?merchant={merchant_b.code}")
    assert refused.context["invalid"] is True


def test_merchant_information_query(client_for, acquirer_admin, acquirer, merchant_a, merchant_b, operator_a):
    client = client_for(acquirer_admin)
    listing = client.get("/transactions/merchants/")
    assert listing.status_code == 200
    assert [m.code for m in listing.context["table"].data] == [merchant_a.code]
    detail = client.get(f"/transactions/merchants/{merchant_a.pk}/")
    fields = dict(detail.context["fields"])
    assert fields["Users"] == "1" and fields["MCC"] == "5311" and fields["Settlement account"] == "—"
    assert client.get(f"/transactions/merchants/{merchant_b.pk}/").status_code == 404


def test_merchant_information_needs_permission(client_for, operator_a, merchant_a):
    assert client_for(operator_a).get(f"/transactions/merchants/{merchant_a.pk}/").status_code == 403


# --- detail --------------------------------------------------------------------------------------


def test_detail_shows_family_and_refund_position(client_for, operator_a, merchant_a, make_txn):
    original = make_txn(merchant_a, order_id="PAY1", amount=10000, refunded_amount=3000, txn_time=bj(2026, 3, 1, 9, 0))
    refund = make_txn(
        merchant_a,
        order_id="REF1",
        txn_type="04",
        amount=3000,
        orig=original,
        orig_query_id=original.query_id,
        txn_time=bj(2026, 3, 2, 9, 0),
    )
    response = client_for(operator_a).get(f"/transactions/{refund.pk}/")
    assert response.status_code == 200
    ctx = response.context
    assert ctx["original"].pk == original.pk
    assert [c.pk for c in ctx["children"]] == [refund.pk]
    assert ctx["position"].remaining == 7000 and ctx["position"].refunded == 3000
    assert ctx["position"].until.isoformat() == "2027-01-25"  # 330 days after 2026-03-01
    body = response.content.decode()
    assert "70.00" in body and "2027-01-25" in body and "622202*********0128" in body


def test_refund_window_ends_after_330_days(client_for, operator_a, merchant_a, make_txn):
    old = make_txn(merchant_a, order_id="OLD", txn_time=bj(2025, 4, 13, 14, 0))
    response = client_for(operator_a).get(f"/transactions/{old.pk}/")
    assert response.context["position"].expired is True
    assert response.context["position"].remaining == 0


def _testid(body: str, testid: str) -> str:
    match = re.search(rf'data-testid="{testid}">([^<]*)<', body)
    assert match, testid
    return match.group(1).strip()


def _pending_refund(actor, original, amount: int):
    from refunds.services import refund_request

    with mock.patch("refunds.tasks.send_refund.delay"):
        return refund_request(actor=actor, original=original, amount=amount, reason="damaged")


def test_detail_subtracts_refunds_in_flight_as_the_refund_form_does(client_for, operator_a, merchant_a, make_txn):
    from refunds.selectors import refund_quote

    original = make_txn(merchant_a, order_id="PAY1", amount=10000, refunded_amount=2000, txn_time=bj(2026, 3, 1, 9, 0))
    _pending_refund(operator_a, original, 3000)

    response = client_for(operator_a).get(f"/transactions/{original.pk}/")

    position = response.context["position"]
    assert (position.refunded, position.held, position.remaining) == (2000, 3000, 5000)
    assert position.remaining == refund_quote(original).refundable
    body = response.content.decode()
    assert (_testid(body, "refunded"), _testid(body, "held"), _testid(body, "remaining")) == ("20.00", "30.00", "50.00")
    assert 'data-testid="refund-action"' in body


def test_detail_lists_the_refunds_not_yet_in_the_ledger(client_for, operator_a, merchant_a, make_txn):
    original = make_txn(merchant_a, order_id="PAY1", amount=10000, txn_time=bj(2026, 3, 1, 9, 0))
    pending = _pending_refund(operator_a, original, 1234)

    response = client_for(operator_a).get(f"/transactions/{original.pk}/", HTTP_ACCEPT_LANGUAGE="en")

    [item] = response.context["in_flight"]
    assert (item.order_id, item.amount, item.status, item.maker) == (
        pending.order_id,
        1234,
        "Waiting for review",
        operator_a.get_username(),
    )
    assert item.url == f"/refunds/{pending.pk}/"
    table = response.content.decode().split('data-testid="refunds-in-flight"')[1].split("</table>")[0]
    assert f'<a href="/refunds/{pending.pk}/">{pending.order_id}</a>' in table
    assert "12.34" in table and "Waiting for review" in table and "2026-03-10 15:00:00" in table


def test_detail_hides_the_refund_action_when_refunds_in_flight_hold_the_rest(
    client_for, operator_a, merchant_a, make_txn
):
    original = make_txn(merchant_a, order_id="PAY1", amount=10000, refunded_amount=2000, txn_time=bj(2026, 3, 1, 9, 0))
    _pending_refund(operator_a, original, 8000)

    response = client_for(operator_a).get(f"/transactions/{original.pk}/")

    assert (response.context["position"].remaining, response.context["position"].held) == (0, 8000)
    body = response.content.decode()
    assert _testid(body, "remaining") == "0.00"
    assert 'data-testid="refund-action"' not in body
    assert 'data-testid="held-note"' in body


def test_refunds_in_flight_are_shown_in_chinese(client_for, operator_a, merchant_a, make_txn):
    original = make_txn(merchant_a, order_id="PAY1", amount=10000, txn_time=bj(2026, 3, 1, 9, 0))
    _pending_refund(operator_a, original, 10000)
    body = client_for(operator_a).get(f"/transactions/{original.pk}/", HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    assert "处理中的退货金额（元）" in body and "处理中的退货（尚未入账）" in body
    assert "申请时间（北京时间）" in body and "处理中的退货已占用该笔消费的剩余金额" in body
    assert "Refunds in progress" not in body


def test_detail_of_a_payment_without_refunds_shows_nothing_in_progress(client_for, operator_a, merchant_a, make_txn):
    original = make_txn(merchant_a, order_id="PAY1", amount=10000, txn_time=bj(2026, 3, 1, 9, 0))
    body = client_for(operator_a).get(f"/transactions/{original.pk}/").content.decode()
    assert _testid(body, "held") == "0.00" and _testid(body, "remaining") == "100.00"
    assert 'data-testid="refunds-in-flight"' not in body and 'data-testid="held-note"' not in body


def test_detail_query_count_does_not_grow_with_refunds_in_flight(
    client_for, operator_a, merchant_a, make_txn, django_assert_max_num_queries
):
    original = make_txn(merchant_a, order_id="PAY1", amount=100000, txn_time=bj(2026, 3, 1, 9, 0))
    client = client_for(operator_a)
    _pending_refund(operator_a, original, 100)
    client.get(f"/transactions/{original.pk}/")
    with CaptureQueriesContext(connection) as one:
        client.get(f"/transactions/{original.pk}/")
    for _ in range(4):
        _pending_refund(operator_a, original, 100)
    with django_assert_max_num_queries(len(one)):
        response = client.get(f"/transactions/{original.pk}/")
    assert len(response.context["in_flight"]) == 5


def test_no_query_leaks_card_hash_into_the_page(client_for, operator_a, merchant_a, make_txn):
    txn = make_txn(merchant_a)
    body = client_for(operator_a).get(f"/transactions/{txn.pk}/").content.decode()
    assert txn.card_hash not in body
    assert Transaction.objects.count() == 1


def test_the_table_rows_escape_every_value(client_for, operator_a, merchant_a, make_txn):
    """The rows are written in Python (payments.tables.TransactionTable.body_html): nothing is left raw."""
    txn = make_txn(merchant_a, order_id="<b>X</b>&'\"", card_masked="<i>62******34</i>")
    html = client_for(operator_a).get("/transactions/history/").content.decode()
    assert "<b>X</b>" not in html and "<i>62*" not in html
    assert "&lt;b&gt;X&lt;/b&gt;&amp;&#x27;&quot;" in html
    assert f'<a href="/transactions/{txn.pk}/">' in html
    assert "&lt;i&gt;62******34&lt;/i&gt;" in html


def test_an_empty_result_says_so_in_the_table(client_for, operator_a):
    html = client_for(operator_a).get("/transactions/history/", HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    assert '<tr><td colspan="8">没有符合查询条件的交易。</td></tr>' in html


def test_the_history_page_needs_five_statements(
    client_for, operator_a, merchant_a, make_txn, django_assert_num_queries
):
    """Session, user with organisation and roles, second-factor device, the page of rows, the totals."""
    make_txn(merchant_a)
    client = client_for(operator_a)
    client.get("/transactions/history/")
    with django_assert_num_queries(5):
        assert client.get("/transactions/history/").status_code == 200


def test_the_shared_search_form_never_offers_another_acquirers_merchants(
    client_for, acquirer_reviewer, merchant_a, merchant_b, make_txn
):
    """The form class is built once per process; the merchant choices are set for each request."""
    from payments.filtersets import TransactionFilterSet

    other_reviewer = UserFactory(organisation=merchant_b.acquirer, username="b.acq", roles=["acquirer_reviewer"])
    make_txn(merchant_a, order_id="A1")
    make_txn(merchant_b, order_id="B1")
    if "_form_class" in TransactionFilterSet.__dict__:
        del TransactionFilterSet._form_class  # built afresh, under the other acquirer's request
    other = client_for(other_reviewer)
    assert _order_ids(other.get(f"/transactions/history/?merchant={merchant_b.code}")) == {"B1"}
    ours = client_for(acquirer_reviewer)
    assert ours.get(f"/transactions/history/?merchant={merchant_b.code}").context["invalid"] is True
    assert _order_ids(ours.get(f"/transactions/history/?merchant={merchant_a.code}")) == {"A1"}
    assert other.get(f"/transactions/history/?merchant={merchant_a.code}").context["invalid"] is True


def test_the_shared_search_form_speaks_each_request_s_language(client_for, operator_a):
    client = client_for(operator_a)
    chinese = client.get("/transactions/history/", HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    english = client.get("/transactions/history/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "最低金额（元）" in chinese and "Minimum amount (yuan)" not in chinese
    assert "Minimum amount (yuan)" in english and "最低金额（元）" not in english
