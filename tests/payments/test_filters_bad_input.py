"""Bad input to the transaction search (issue 3, section 5): out-of-range dates, huge numbers, garbage
cursors and injection-like values in every parameter, on the pages, the downloads and the REST API.

Each gets the form's message on a page or a 400 with the message from the API, never a 500, is escaped
wherever it is shown, and writes nothing.
"""

import base64
from datetime import UTC, datetime, timedelta, timezone
from urllib.parse import urlencode

import markupsafe
import pytest
import time_machine
from django.utils.html import escape
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from payments.filtersets import RETENTION_YEARS, SORT_VALUES, TransactionFilterSet, allowed_date_range
from payments.models import ExportJob, Transaction
from portal.audit.models import AuditEvent

from .conftest import bj

pytestmark = pytest.mark.django_db

NOW = bj(2026, 3, 10, 15, 0, 0)  # Beijing 2026-03-10: dates from 2019-03-10 to 2026-03-11 are allowed
RANGE_MESSAGE = "Enter a date from 2019-03-10 to 2026-03-11: transactions are kept for 7 years."

API_LIST = "/api/v1/transactions/"
API_EXPORT = "/api/v1/transactions/export/?file_format=csv"


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def ledger(merchant_a, make_txn):
    """One transaction inside the default seven days, so that a search that is ignored finds it."""
    return make_txn(merchant_a, order_id="KEEP0001", amount=12345, txn_time=bj(2026, 3, 9, 9, 0, 0))


def _b64(raw: str) -> str:
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _nothing_written(counts_before: tuple[int, int, int]) -> bool:
    return (Transaction.objects.count(), ExportJob.objects.count(), AuditEvent.objects.count()) == counts_before


def _counts() -> tuple[int, int, int]:
    return Transaction.objects.count(), ExportJob.objects.count(), AuditEvent.objects.count()


# --- out-of-range dates ----------------------------------------------------------------------------

OUT_OF_RANGE = [
    ("date_from=9999-12-31", "date_from"),
    ("date_to=0001-01-03", "date_to"),
    ("date_from=0001-01-01&date_to=0001-01-02", "date_from"),
    ("date_from=0001-01-01", "date_from"),
    ("date_to=9999-12-31", "date_to"),
    ("date_from=2019-03-09&date_to=2019-03-20", "date_from"),  # one day older than seven years
    ("date_from=2026-03-01&date_to=2026-03-12", "date_to"),  # two days ahead
    ("settle_date=9999-12-31", "settle_date"),
    ("settle_date=0001-01-01", "settle_date"),
]


def test_the_allowed_range_is_seven_years_back_to_one_day_ahead():
    assert RETENTION_YEARS == 7
    first, last = allowed_date_range()
    assert (first.isoformat(), last.isoformat()) == ("2019-03-10", "2026-03-11")


def test_a_29_february_today_goes_back_to_28_february():
    with time_machine.travel(bj(2028, 2, 29, 12, 0, 0), tick=False):
        first, last = allowed_date_range()
    assert (first.isoformat(), last.isoformat()) == ("2021-02-28", "2028-03-01")


@pytest.mark.parametrize(("query", "field"), OUT_OF_RANGE)
def test_history_page_names_the_allowed_range(client_for, operator_a, ledger, query, field):
    before = _counts()
    response = client_for(operator_a).get(f"/transactions/history/?{query}")
    assert response.status_code == 200
    assert response.context["invalid"] is True and "page" not in response.context
    assert response.context["filterset"].form.errors[field] == [RANGE_MESSAGE]
    assert RANGE_MESSAGE in response.content.decode()
    assert _nothing_written(before)


@pytest.mark.parametrize(("query", "field"), OUT_OF_RANGE)
def test_api_list_and_export_answer_400_with_the_range(client_for, operator_a, ledger, query, field):
    client = client_for(operator_a)
    before = _counts()
    for url in (f"{API_LIST}?{query}", f"{API_EXPORT}&{query}"):
        response = client.get(url)
        assert response.status_code == 400, url
        assert response.json()["error"]["fields"][field] == [RANGE_MESSAGE], url
    assert client.post(f"{API_EXPORT}&{query}").status_code == 400
    assert _nothing_written(before)


@pytest.mark.parametrize(("query", "field"), OUT_OF_RANGE[:3])
def test_page_download_refuses_out_of_range_dates(client_for, operator_a, ledger, query, field):
    before = _counts()
    response = client_for(operator_a).get(f"/transactions/export/?file_format=csv&{query}", follow=True)
    assert response.status_code == 200
    assert "The download could not be prepared: correct the search first." in response.content.decode()
    assert _nothing_written(before)


def test_the_range_message_in_chinese(client_for, operator_a):
    client = client_for(operator_a)
    response = client.get("/transactions/history/?date_from=9999-12-31", HTTP_ACCEPT_LANGUAGE="zh-hans")
    assert "请输入 2019-03-10 至 2026-03-11 之间的日期：交易记录保存 7 年。" in response.content.decode()
    api = client.get(f"{API_LIST}?date_to=0001-01-03", HTTP_ACCEPT_LANGUAGE="zh-hans")
    assert api.json()["error"]["fields"]["date_to"] == [
        "请输入 2019-03-10 至 2026-03-11 之间的日期：交易记录保存 7 年。"
    ]


@pytest.mark.parametrize(
    "query",
    [
        "date_from=2019-03-10&date_to=2020-03-09",  # the oldest retained year
        "date_from=2019-03-10",  # start alone: one year from it
        "date_to=2026-03-11",  # the settlement day opens tomorrow after 23:00
        "date_from=2026-03-11",  # start alone, tomorrow
        "date_to=2019-03-16",  # end alone: the seven days before it
        "settle_date=2026-03-11",
    ],
)
def test_dates_at_the_edges_of_the_range_are_accepted(client_for, operator_a, ledger, query):
    client = client_for(operator_a)
    page = client.get(f"/transactions/history/?{query}")
    assert page.status_code == 200 and "invalid" not in page.context
    assert client.get(f"{API_LIST}?{query}").status_code == 200


def test_end_date_alone_near_the_oldest_day_is_clipped_not_crashed(client_for, operator_a):
    """The default start (seven days before the end) would fall before the retained period."""
    response = client_for(operator_a).get(f"{API_LIST}?date_to=2019-03-12")
    assert response.status_code == 200  # the start is clipped to the oldest retained day
    with time_machine.travel(bj(2026, 3, 10, 23, 30, 0), tick=False):  # after the cut-off
        late = client_for(operator_a).get(f"{API_LIST}?date_to=2026-03-11")
    assert late.status_code == 200


# --- huge numbers and garbage cursors --------------------------------------------------------------

HUGE_AMOUNTS = ["1e20", "99999999999999999999", "1e-400", "NaN", "Infinity", "-1", "0x10", "9" * 5000]


@pytest.mark.parametrize("name", ["amount_min", "amount_max"])
def test_huge_or_malformed_amounts_are_a_form_error(client_for, operator_a, ledger, name):
    client = client_for(operator_a)
    for value in HUGE_AMOUNTS:
        page = client.get("/transactions/history/", {name: value})
        assert page.status_code == 200 and page.context["invalid"] is True, value
        assert name in page.context["filterset"].form.errors
        api = client.get(API_LIST, {name: value})
        assert api.status_code == 400 and name in api.json()["error"]["fields"], value


def test_the_largest_amount_the_form_takes_fits_the_column(client_for, operator_a, ledger):
    client = client_for(operator_a)
    response = client.get(API_LIST, {"amount_min": "0", "amount_max": "999999999999.99"})
    assert response.status_code == 200
    assert [r["order_id"] for r in response.json()["results"]] == ["KEEP0001"]


GARBAGE_CURSORS = [
    "'; DROP TABLE payments_transaction; --",
    "<script>alert(1)</script>",
    "%%%",
    "x" * 10000,
    _b64("0001-01-01T00:00:00+05:00|1"),  # converting to UTC would overflow
    _b64("9999-12-31T23:59:59-05:00|1"),
    _b64("2026-03-09T09:00:00|1"),  # naive
    _b64("2026-03-09T09:00:00+08:00|99999999999999999999999"),  # id past a bigint
    _b64(f"{10**30}|1"),
    _b64("-" + "9" * 30 + "|1"),
    _b64("nonsense"),
    _b64("|"),
    "\u00e9\u00e9",
]


@pytest.mark.parametrize("sort", ["-txn_time", "amount"])
@pytest.mark.parametrize("key", ["after", "before"])
def test_pages_ignore_a_garbage_cursor_and_show_the_first_page(client_for, operator_a, ledger, key, sort):
    client = client_for(operator_a)
    before = _counts()
    for cursor in GARBAGE_CURSORS:
        response = client.get("/transactions/history/", {key: cursor, "sort": sort})
        assert response.status_code == 200, cursor
        assert [t.order_id for t in response.context["page"].rows] == ["KEEP0001"], cursor
        assert "<script>alert(1)</script>" not in response.content.decode()
    assert _nothing_written(before)


@pytest.mark.parametrize("sort", ["-txn_time", "amount"])
def test_api_answers_400_to_a_garbage_cursor(client_for, operator_a, ledger, sort):
    client = client_for(operator_a)
    for cursor in [*GARBAGE_CURSORS, _b64(f"n|{sort}|garbage"), _b64("n|sort|" + _b64("10000|1"))]:
        response = client.get(API_LIST, {"cursor": cursor, "sort": sort})
        assert response.status_code == 400, cursor
        assert response.json()["error"]["fields"]["cursor"] == [
            "This cursor is not valid: follow the next or previous link of a list answer."
        ]


def test_keyset_page_ignores_cursors_out_of_the_columns_range(merchant_a, ledger):
    from payments.selectors import decode_cursor, keyset_page

    qs = Transaction.objects.all()
    for token in GARBAGE_CURSORS:
        for sort in ("-txn_time", "txn_time", "-amount", "amount"):
            assert decode_cursor(token, sort) is None, (token, sort)
            assert [t.order_id for t in keyset_page(qs, sort=sort, after=token).rows] == ["KEEP0001"]


# --- injection-like values in every parameter --------------------------------------------------------

SQLI = "1' OR '1'='1' --"
SQLI_DROP = "'; DROP TABLE payments_transaction; --"
XSS = '"><script>alert(1)</script>'
XSS_IMG = "<img src=x onerror=alert(1)>"
PAYLOADS = [SQLI, SQLI_DROP, XSS, XSS_IMG]

# What the search makes of each parameter: "error" (the form's message), "empty" (a valid search that
# matches nothing: the value is a literal) or "ignored" (not a search parameter of that page).
PAGE_PARAMS = {
    "order_id": "empty",
    "query_id": "error-if-long",  # at most 21 characters
    "card": "error",
    "card_ref": "error",
    "amount_min": "error",
    "amount_max": "error",
    "date_from": "error",
    "date_to": "error",
    "settle_date": "error",
    "sort": "error",
    "status": "error",
    "txn_type": "error",
    "channel": "error",
    "merchant": "ignored",  # a merchant's user has no merchant filter
    "after": "ignored",
    "before": "ignored",
    "page_size": "ignored",
}
# Text inputs echo what was typed (escaped); the other widgets do not.
ECHOED = {"order_id", "query_id", "card", "amount_min", "amount_max", "date_from", "date_to", "settle_date"}


def _expected(kind: str, value: str) -> str:
    if kind == "error-if-long":
        return "error" if len(value) > 21 else "empty"
    return kind


def _escaped_in(value: str, body: str) -> bool:
    return escape(value) in body or str(markupsafe.escape(value)) in body


@pytest.mark.parametrize("name", sorted(PAGE_PARAMS))
def test_history_page_with_an_injection_attempt(client_for, operator_a, ledger, name):
    client = client_for(operator_a)
    before = _counts()
    for payload in PAYLOADS:
        expected = _expected(PAGE_PARAMS[name], payload)
        response = client.get("/transactions/history/", {name: payload})
        body = response.content.decode()
        assert response.status_code == 200
        assert payload not in body
        if expected == "error":
            assert response.context["invalid"] is True
            assert name in response.context["filterset"].form.errors
            assert 'data-testid="invalid-search"' in body
        else:
            assert "invalid" not in response.context
            rows = [t.order_id for t in response.context["page"].rows]
            assert rows == ([] if expected == "empty" else ["KEEP0001"])
        if name in ECHOED:
            assert _escaped_in(payload, body), payload
    assert _nothing_written(before)
    assert Transaction.objects.get().order_id == "KEEP0001"


def test_today_page_with_an_injection_attempt(client_for, operator_a, ledger):
    client = client_for(operator_a)
    before = _counts()
    for name in PAGE_PARAMS:
        for payload in (SQLI_DROP, XSS):
            response = client.get("/transactions/", {name: payload})
            assert response.status_code == 200 and payload not in response.content.decode(), name
    assert _nothing_written(before)


def test_acquirer_merchant_filter_with_an_injection_attempt(client_for, acquirer_reviewer, ledger):
    client = client_for(acquirer_reviewer)
    before = _counts()
    for payload in PAYLOADS:
        page = client.get("/transactions/history/", {"merchant": payload})
        assert page.status_code == 200 and page.context["invalid"] is True
        assert page.context["filterset"].form.errors["merchant"] == ["None of your merchants has this merchant number."]
        assert payload not in page.content.decode() and _escaped_in(payload, page.content.decode())
        api = client.get(API_LIST, {"merchant": payload})
        assert api.status_code == 400
        assert api.json()["error"]["fields"]["merchant"] == ["None of your merchants has this merchant number."]
    assert _nothing_written(before)


API_PARAMS = {
    **{name: kind for name, kind in PAGE_PARAMS.items() if name not in ("page_size",)},
    "page_size": "error",
    "cursor": "error",
    "today": "error",
}


@pytest.mark.parametrize("name", sorted(API_PARAMS))
def test_api_list_with_an_injection_attempt(client_for, operator_a, ledger, name):
    client = client_for(operator_a)
    before = _counts()
    for payload in PAYLOADS:
        expected = _expected(API_PARAMS[name], payload)
        response = client.get(API_LIST, {name: payload})
        assert response["Content-Type"] == "application/json"
        if expected == "error":
            assert response.status_code == 400, payload
            body = response.json()["error"]
            assert body["code"] == "invalid" and body["fields"][name], body
        else:
            assert response.status_code == 200, payload
            rows = [r["order_id"] for r in response.json()["results"]]
            assert rows == ([] if expected == "empty" else ["KEEP0001"])
    assert _nothing_written(before)


@pytest.mark.parametrize("method", ["get", "post"])
def test_api_export_with_an_injection_attempt(client_for, operator_a, ledger, method):
    client = client_for(operator_a)
    before = _counts()
    for name in sorted(set(API_PARAMS) - {"cursor", "page_size", "after", "before", "merchant"}):
        for payload in (SQLI_DROP, XSS):
            response = getattr(client, method)(f"{API_EXPORT}&{urlencode({name: payload})}")
            # Either the parameter is refused, or it is a literal that matches nothing: a 400 either way.
            assert response.status_code == 400, (name, payload)
            assert response["Content-Type"] == "application/json"
    assert _nothing_written(before)


def test_page_download_with_an_injection_attempt(client_for, operator_a, ledger):
    client = client_for(operator_a)
    before = _counts()
    for name in ("order_id", "date_from", "amount_min", "sort", "status", "card", "card_ref", "settle_date"):
        for payload in (SQLI_DROP, XSS):
            response = client.get("/transactions/export/", {"file_format": "csv", name: payload}, follow=True)
            assert response.status_code == 200
            assert payload not in response.content.decode()
    assert _nothing_written(before)


def test_a_bound_filterset_never_raises_on_garbage():
    """Straight through the FilterSet: every field at once with garbage, the form just says no."""
    data = {name: SQLI_DROP for name in TransactionFilterSet.base_filters}
    filterset = TransactionFilterSet(data, queryset=Transaction.objects.none())
    assert filterset.is_valid() is False
    assert {"date_from", "date_to", "amount_min", "sort", "status"} <= set(filterset.form.errors)


# --- properties: whatever the dates or the cursor, a search is valid or says why ------------------------

_examples = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
_maybe_date = st.one_of(st.none(), st.dates())


@_examples
@given(
    first=_maybe_date,
    last=_maybe_date,
    settle=_maybe_date,
    exact=st.booleans(),
    sort=st.sampled_from(sorted(SORT_VALUES)),
)
def test_any_dates_give_a_search_or_a_message(ledger, first, last, settle, exact, sort):
    data = {"sort": sort, "order_id": "KEEP0001" if exact else ""}
    for name, value in (("date_from", first), ("date_to", last), ("settle_date", settle)):
        if value is not None:
            data[name] = value.isoformat()
    filterset = TransactionFilterSet(data, queryset=Transaction.objects.all())
    oldest, latest = allowed_date_range()
    if filterset.is_valid():
        list(filterset.qs[:1])
        filterset.job_params()
        cleaned = filterset.form.cleaned_data
        for name in ("date_from", "date_to", "settle_date"):
            assert cleaned[name] is None or oldest <= cleaned[name] <= latest
    else:
        assert set(filterset.form.errors) <= {"date_from", "date_to", "settle_date"}
        outside = [d for d in (first, last, settle) if d is not None and not oldest <= d <= latest]
        if outside:
            assert any(RANGE_MESSAGE in errors for errors in filterset.form.errors.values())


_offsets = st.integers(min_value=-1439, max_value=1439).map(lambda m: timezone(timedelta(minutes=m)))
_values = st.one_of(
    st.integers(),
    st.datetimes(timezones=_offsets).map(datetime.isoformat),
    st.datetimes().map(datetime.isoformat),
    st.text(max_size=40),
)
_tokens = st.one_of(
    st.text(max_size=300),
    st.binary(max_size=120).map(lambda raw: base64.urlsafe_b64encode(raw).decode()),
    st.builds(lambda value, pk: _b64(f"{value}|{pk}"), _values, st.one_of(st.integers(), st.text(max_size=5))),
)


@_examples
@given(token=_tokens)
def test_any_cursor_gives_a_page(ledger, token):
    from payments.api.pagination import decode_api_cursor
    from payments.selectors import decode_cursor, keyset_page

    qs = Transaction.objects.all()
    for sort in SORT_VALUES:
        key = decode_cursor(token, sort)
        if key is not None and sort.lstrip("-") == "txn_time":
            assert key[0].tzinfo is UTC
        for direction in ("after", "before"):
            rows = keyset_page(qs, sort=sort, **{direction: token}).rows
            assert len(rows) <= 1
    decode_api_cursor(token)
    decode_api_cursor(_b64(f"n|-amount|{token}"))
