"""The home dashboard: 30 settlement days of the user's organisation as KPI cards and pygal charts."""

import base64
import re
from datetime import date

import pytest
import time_machine
from django.test import Client

from payments.selectors import dashboard_data
from portal.audit.models import AuditEvent
from tests.factories import login_password_only

from .conftest import bj

pytestmark = pytest.mark.django_db

NOW = bj(2026, 3, 10, 15, 0, 0)  # settlement day 2026-03-10; the 30 days start 2026-02-09
URL = "/transactions/dashboard/"


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def ledger(merchant_a, merchant_b, make_txn):
    pay1 = make_txn(merchant_a, amount=10000, txn_time=bj(2026, 3, 9, 10, 0))
    make_txn(merchant_a, amount=2550, txn_time=bj(2026, 3, 9, 11, 0))
    make_txn(merchant_a, amount=700, status="failed", txn_time=bj(2026, 3, 9, 12, 0))
    make_txn(merchant_a, amount=900, status="pending", txn_time=bj(2026, 3, 9, 12, 30))
    # 23:30 on the 9th belongs to settlement day the 10th.
    make_txn(merchant_a, amount=5000, txn_time=bj(2026, 3, 9, 23, 30))
    make_txn(merchant_a, txn_type="04", amount=3000, orig=pay1, txn_time=bj(2026, 3, 10, 9, 0))
    make_txn(merchant_a, amount=123, txn_time=bj(2026, 2, 9, 0, 30))  # first day of the window
    make_txn(merchant_a, amount=999, txn_time=bj(2026, 2, 8, 12, 0))  # before the window
    make_txn(merchant_b, amount=77777, txn_time=bj(2026, 3, 9, 10, 0))  # another merchant


def test_numbers_for_a_known_ledger(operator_a, ledger):
    data = dashboard_data(operator_a)
    assert len(data.days) == 30
    assert (data.days[0].day, data.days[-1].day) == (date(2026, 2, 9), date(2026, 3, 10))
    by_day = {d.day: d for d in data.days}
    ninth = by_day[date(2026, 3, 9)]
    assert (ninth.count, ninth.amount, ninth.attempts, ninth.success_rate) == (2, 12550, 3, 66.7)
    tenth = by_day[date(2026, 3, 10)]
    assert (tenth.count, tenth.amount, tenth.refund_count, tenth.refund_amount) == (1, 5000, 1, 3000)
    assert by_day[date(2026, 2, 9)].amount == 123
    assert by_day[date(2026, 3, 1)].success_rate is None
    assert (data.count, data.amount, data.attempts, data.refund_amount) == (4, 17673, 5, 3000)
    assert data.success_rate == 80.0


def test_another_merchant_does_not_count(admin_b, operator_a, ledger, merchant_b):
    data = dashboard_data(operator_a)
    assert 77777 not in [d.amount for d in data.days]
    from tests.factories import UserFactory

    operator_b = UserFactory(organisation=merchant_b, username="b.op", roles=["merchant_operator"])
    assert dashboard_data(operator_b).amount == 77777


def test_acquirer_sees_its_merchants_only(acquirer_reviewer, ledger):
    assert dashboard_data(acquirer_reviewer).amount == 17673


def test_one_grouped_query(operator_a, ledger, django_assert_num_queries):
    with django_assert_num_queries(1):
        dashboard_data(operator_a)


def test_fragment_shows_kpis_and_four_svg_charts(client_for, operator_a, ledger):
    response = client_for(operator_a).get(URL, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    body = response.content.decode()
    assert "<html" not in body
    kpis = dict(re.findall(r'data-kpi="(\w+)">([^<]+)<', body))
    assert kpis == {"count": "4", "amount": "176.73", "success_rate": "80.0%", "refunds": "30.00"}
    charts = re.findall(r'src="data:image/svg\+xml;base64,([^"]+)" alt="([^"]+)" data-chart="(\w+)"', body)
    assert [key for _uri, _alt, key in charts] == ["count", "amount", "success_rate", "refunds"]
    svg = base64.b64decode(charts[0][0]).decode()
    assert (
        svg.startswith("<svg")
        and "<script" not in svg
        and "http://"
        not in svg.split(">", 1)[1]
        .replace("http://www.w3.org", "")
        .replace("http://pygal.org", "")
        .replace("http://github.com/Kozea/pygal", "")
    )


def test_fragment_in_chinese(client_for, operator_a, ledger):
    body = client_for(operator_a).get(URL, HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    assert 'data-chart="amount"' in body


def test_home_loads_the_fragment_for_users_who_may_see_transactions(client_for, operator_a):
    body = client_for(operator_a).get("/").content.decode()
    assert f'hx-get="{URL}"' in body
    assert re.search(r'<script[^>]+htmx[^>]+nonce="[^"]+"|<script[^>]+nonce="[^"]+"[^>]+htmx', body)


def test_admin_without_transactions_view_gets_no_charts(client_for, admin_a):
    client = client_for(admin_a)
    assert f'hx-get="{URL}"' not in client.get("/").content.decode()
    assert client.get(URL).status_code == 403


def test_anonymous_and_password_only_are_turned_away(operator_a):
    anonymous = Client().get(URL)
    assert anonymous.status_code == 302 and "/accounts/login/" in anonymous["Location"]
    client = Client()
    login_password_only(client, operator_a)
    half = client.get(URL)
    assert half.status_code == 302 and "/accounts/verify/" in half["Location"]


def test_reading_the_dashboard_writes_nothing(client_for, operator_a, ledger):
    before = AuditEvent.objects.count()
    client_for(operator_a).get(URL)
    assert AuditEvent.objects.count() == before
