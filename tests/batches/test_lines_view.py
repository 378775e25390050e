"""The lines of a batch, by status: the page (keyset paging, filters, counts) and the API's ``lines``."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from portal.audit.models import AuditEvent
from portal.batches import selectors
from portal.batches.models import Batch, BatchLine, BatchOrderId
from portal.batches.registry import get_kind
from tests.factories import MerchantFactory, UserFactory, login_password_only

pytestmark = pytest.mark.django_db

LINES_TABLE = BatchLine._meta.db_table

# line n (1-based) gets STATUSES[(n - 1) % 7]
STATUSES = ["valid", "pending", "processing", "sent", "succeeded", "failed", "invalid"]


def make_batch(user, statuses: list[str], *, kind: str = "demo", status: str = "processing") -> Batch:
    """A batch of ``kind`` uploaded by ``user`` whose line n has ``statuses[n - 1]``, written directly
    (a million-line batch is the same rows, more of them)."""
    batch = Batch.objects.create(
        kind=kind,
        organisation=user.organisation,
        merchant=user.organisation,
        uploaded_by=user,
        original_name="lines.txt",
        stored_name=uuid.uuid4().hex,
        file_format="text",
        size=1,
        sha256=uuid.uuid4().hex * 2,
        status=status,
        total_lines=len(statuses),
    )
    lines = []
    for n, line_status in enumerate(statuses, start=1):
        line = BatchLine(
            batch=batch, line_no=n, order_id=f"O{n:06d}", amount=n * 100 + 1, status=line_status, data={"x": "1"}
        )
        if line_status == "invalid":
            line.error_code, line.error_column = "demo_amount", "amount"
        elif line_status == "succeeded":
            line.result = {"respCode": "00", "respMsg": "成功", "queryId": f"Q{n}", "needs_query": False}
        elif line_status == "failed":
            line.result = {"respCode": "61", "respMsg": "declined"}
        lines.append(line)
    BatchLine.objects.bulk_create(lines)
    # As the pipeline leaves them: every line but the invalid ones holds its order id.
    BatchOrderId.objects.bulk_create(
        BatchOrderId(family=get_kind(kind).family, merchant=batch.merchant, order_id=line.order_id, batch=batch,
                     line_no=line.line_no)
        for line in lines
        if line.status != "invalid"
    )  # fmt: skip
    return batch


@pytest.fixture
def operator_b(merchant_b):
    return UserFactory(organisation=merchant_b, username="b.operator", roles=["merchant_operator"])


@pytest.fixture
def mixed(operator_a):
    return make_batch(operator_a, [STATUSES[i % 7] for i in range(21)])


def _line_nos(response) -> list[int]:
    assert response.status_code == 200
    return [line.line_no for line in response.context["page"].lines]


def _lines_url(batch, query: str = "") -> str:
    return reverse("batches:lines", args=[batch.pk]) + query


def _batchline_queries(queries) -> list[str]:
    return [q["sql"] for q in queries if LINES_TABLE in q["sql"]]


# --- the page ------------------------------------------------------------------------------------


def test_pages_through_every_line_by_keyset_100_a_page(operator_a, client_for):
    # given a batch of 250 valid lines
    batch = make_batch(operator_a, ["valid"] * 250)
    client = client_for(operator_a)
    # when the lines page is opened and followed forward
    first = client.get(_lines_url(batch))
    assert _line_nos(first) == list(range(1, 101))
    assert first.context["next_query"] == "?after=100" and first.context["previous_query"] == ""
    second = client.get(_lines_url(batch, first.context["next_query"]))
    assert _line_nos(second) == list(range(101, 201))
    assert second.context["previous_query"] == "?before=101"
    third = client.get(_lines_url(batch, second.context["next_query"]))
    # then every line is shown once, in order, and the last page has no "next"
    assert _line_nos(third) == list(range(201, 251))
    assert third.context["next_query"] == ""
    # and "previous" from the last page is the second page again
    back = client.get(_lines_url(batch, third.context["previous_query"]))
    assert _line_nos(back) == list(range(101, 201))
    assert back.context["next_query"] == "?after=200" and back.context["previous_query"] == "?before=101"
    first_again = client.get(_lines_url(batch, back.context["previous_query"]))
    assert _line_nos(first_again) == list(range(1, 101)) and first_again.context["previous_query"] == ""


def test_a_page_reads_the_lines_by_keyset_without_offset_or_count(operator_a):
    batch = make_batch(operator_a, ["valid"] * 30)
    with CaptureQueriesContext(connection) as ctx:
        page = selectors.batch_lines_page(batch, after=10, size=5)
    assert [line.line_no for line in page.lines] == [11, 12, 13, 14, 15]
    assert (page.next_after, page.previous_before) == (15, 11)
    sqls = _batchline_queries(ctx.captured_queries)
    # one page query (size + 1 rows from the cursor) and one EXISTS for "previous"
    assert len(sqls) == 2
    assert all("OFFSET" not in sql.upper() and "COUNT(" not in sql.upper() for sql in sqls)
    assert '"line_no" > 10' in sqls[0] and "LIMIT 6" in sqls[0]


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("", list(range(1, 22))),
        ("valid", [1, 2, 8, 9, 15, 16]),  # valid and pending: waiting to be sent
        ("processing", [3, 10, 17]),
        ("sent", [4, 11, 18]),
        ("succeeded", [5, 12, 19]),
        ("failed", [6, 13, 20]),
        ("invalid", [7, 14, 21]),
        ("bogus", list(range(1, 22))),  # an unknown filter shows every line
    ],
)
def test_status_filter(mixed, operator_a, client_for, status, expected):
    response = client_for(operator_a).get(_lines_url(mixed, f"?status={status}"))
    assert _line_nos(response) == expected
    assert response.context["status"] == (status if status != "bogus" else "")


def test_order_id_search_is_exact_and_combines_with_the_status(mixed, operator_a, client_for):
    client = client_for(operator_a)
    assert _line_nos(client.get(_lines_url(mixed, "?order_id=O000005"))) == [5]
    assert _line_nos(client.get(_lines_url(mixed, "?order_id=+O000005+"))) == [5]  # surrounding blanks ignored
    assert _line_nos(client.get(_lines_url(mixed, "?order_id=O00000"))) == []  # no prefix match
    assert _line_nos(client.get(_lines_url(mixed, "?order_id=o000005"))) == []  # exact, case included
    assert _line_nos(client.get(_lines_url(mixed, "?order_id=O000005&status=succeeded"))) == [5]
    response = client.get(_lines_url(mixed, "?order_id=O000005&status=failed"))
    assert _line_nos(response) == []
    assert 'data-testid="no-lines"' in response.content.decode()


def test_order_id_search_reads_the_held_order_id_and_the_invalid_lines(mixed, operator_a, client_for):
    """A validated batch's line is found through its held order id (or, invalid, through the status index):
    a line whose order id another line of the batch holds is found, the holder too; a line that neither holds
    its order id nor is invalid is not what a validated batch has, and shows how the line was reached."""
    client = client_for(operator_a)
    BatchLine.objects.filter(batch=mixed, line_no=14).update(order_id="O000005")  # invalid: a repeat of line 5
    assert _line_nos(client.get(_lines_url(mixed, "?order_id=O000005"))) == [5, 14]
    assert _line_nos(client.get(_lines_url(mixed, "?order_id=O000005&status=invalid"))) == [14]
    BatchOrderId.objects.filter(batch=mixed, line_no=5).delete()
    assert _line_nos(client.get(_lines_url(mixed, "?order_id=O000005"))) == [14]
    with CaptureQueriesContext(connection) as queries:
        client.get(_lines_url(mixed, "?order_id=O000006"))
    (sql,) = [q for q in _batchline_queries(queries) if "LIMIT" in q]
    assert '"line_no" IN (6)' in sql


@pytest.mark.parametrize("status", ["cancelled", "validating"])
def test_order_id_search_of_a_batch_without_holds_reads_every_line(operator_a, client_for, status):
    batch = make_batch(operator_a, [STATUSES[i % 7] for i in range(21)], status=status)
    BatchOrderId.objects.filter(batch=batch).delete()  # released (or not yet held)
    assert _line_nos(client_for(operator_a).get(_lines_url(batch, "?order_id=O000005"))) == [5]


def test_order_id_search_of_an_acquirers_file_for_several_merchants(acquirer, acquirer_reviewer, merchant_a):
    """The holds of an acquirer's file are its lines' merchants' (one probe per merchant of the acquirer)."""
    other = MerchantFactory(acquirer=acquirer)
    stranger = MerchantFactory()  # another acquirer's merchant: never one of this file's holders
    batch = make_batch(acquirer_reviewer, ["valid", "succeeded", "invalid", "valid"])
    Batch.objects.filter(pk=batch.pk).update(merchant=None)
    batch.refresh_from_db()
    BatchOrderId.objects.filter(batch=batch).delete()
    for line_no, merchant in ((1, merchant_a), (2, other), (4, stranger)):
        BatchLine.objects.filter(batch=batch, line_no=line_no).update(merchant=merchant)
        BatchOrderId.objects.create(
            family="demo", merchant=merchant, order_id=f"O{line_no:06d}", batch=batch, line_no=line_no
        )

    def found(order_id: str) -> list[int]:
        return [line.line_no for line in selectors.batch_lines_page(batch, order_id=order_id).lines]

    assert (found("O000001"), found("O000002"), found("O000003")) == ([1], [2], [3])
    assert found("O000004") == []  # held under a merchant this acquirer does not acquire: not this file's


def test_the_filters_survive_paging(operator_a, client_for):
    batch = make_batch(operator_a, ["failed", "valid"] * 150)  # 150 failed lines at odd numbers
    client = client_for(operator_a)
    first = client.get(_lines_url(batch, "?status=failed"))
    assert _line_nos(first) == list(range(1, 200, 2))
    assert first.context["next_query"] == "?status=failed&after=199"
    second = client.get(_lines_url(batch, first.context["next_query"]))
    assert _line_nos(second) == list(range(201, 300, 2)) and second.context["next_query"] == ""


def test_counts_per_status_in_one_group_by(mixed, django_assert_num_queries):
    with django_assert_num_queries(1) as ctx:
        counts = selectors.batch_line_counts(mixed)
    assert "GROUP BY" in ctx.captured_queries[0]["sql"].upper()
    assert counts == {"": 21, "valid": 6, "processing": 3, "sent": 3, "succeeded": 3, "failed": 3, "invalid": 3}


def test_a_validated_batch_counts_only_the_lines_past_valid(mixed, django_assert_num_queries):
    # once validated the valid lines (the many) are the total less the rest, which the partial index holds
    with django_assert_num_queries(1) as ctx:
        selectors.batch_line_counts(mixed)
    assert "NOT (" in ctx.captured_queries[0]["sql"] and "'valid'" in ctx.captured_queries[0]["sql"]
    # while validating, lines are still being written: every line is counted
    Batch.objects.filter(pk=mixed.pk).update(status="validating")
    mixed.refresh_from_db()
    with django_assert_num_queries(1) as ctx:
        counts = selectors.batch_line_counts(mixed)
    assert "NOT (" not in ctx.captured_queries[0]["sql"]
    assert counts == {"": 21, "valid": 6, "processing": 3, "sent": 3, "succeeded": 3, "failed": 3, "invalid": 3}


def test_a_status_without_lines_costs_no_query(mixed, django_assert_num_queries):
    counts = selectors.batch_line_counts(mixed) | {"failed": 0}
    with django_assert_num_queries(0):
        page = selectors.batch_lines_page(mixed, status="failed", counts=counts)
    assert page == selectors.LinesPage([], None, None)


@pytest.mark.parametrize("status", ["failed", "succeeded", "invalid"])
def test_a_rare_status_is_read_through_its_index_with_the_same_pages(operator_a, status):
    # given 2,000 lines of which 12 have the status (12² < 101 × 2,000: sorting 12 beats walking 2,000)
    statuses = ["valid"] * 2000
    for n in range(5, 2000, 170):
        statuses[n] = status
    batch = make_batch(operator_a, statuses)
    expected = [n + 1 for n in range(5, 2000, 170)]
    counts = selectors.batch_line_counts(batch)
    assert counts[status] == 12
    # when paged 5 at a time through the status index
    with CaptureQueriesContext(connection) as ctx:
        first = selectors.batch_lines_page(batch, status=status, size=5, counts=counts)
    assert "+ 0" in ctx.captured_queries[0]["sql"]
    second = selectors.batch_lines_page(batch, status=status, size=5, counts=counts, after=first.next_after)
    third = selectors.batch_lines_page(batch, status=status, size=5, counts=counts, after=second.next_after)
    back = selectors.batch_lines_page(batch, status=status, size=5, counts=counts, before=third.previous_before)
    # then the pages are those of the plain walk in line order
    plain, after = [], None
    for _ in range(3):
        plain.append(selectors.batch_lines_page(batch, status=status, size=5, after=after))
        after = plain[-1].next_after
    pages = [[line.line_no for line in page.lines] for page in (first, second, third)]
    assert pages == [[line.line_no for line in page.lines] for page in plain]
    assert [(p.previous_before, p.next_after) for p in plain] == [
        (p.previous_before, p.next_after) for p in (first, second, third)
    ]
    assert sum(pages, []) == expected
    assert (first.previous_before, first.next_after) == (None, expected[4])
    assert (third.previous_before, third.next_after) == (expected[10], None)
    assert [line.line_no for line in back.lines] == pages[1] and back.next_after == expected[9]


def test_a_common_status_is_walked_in_line_order(operator_a):
    # given every other line failed (500² ≥ 101 × 1,000: the next 100 are found within 200 lines)
    batch = make_batch(operator_a, ["failed", "valid"] * 500)
    counts = selectors.batch_line_counts(batch)
    with CaptureQueriesContext(connection) as ctx:
        page = selectors.batch_lines_page(batch, status="failed", counts=counts)
    assert "+ 0" not in ctx.captured_queries[0]["sql"]
    assert [line.line_no for line in page.lines] == list(range(1, 200, 2)) and page.next_after == 199


def test_no_count_query_for_a_batch_without_lines(operator_a, django_assert_num_queries):
    batch = make_batch(operator_a, [], status="uploaded")
    with django_assert_num_queries(0):
        counts = selectors.batch_line_counts(batch)
    assert set(counts.values()) == {0}


def test_the_lines_page_shows_each_status_with_its_count(mixed, operator_a, client_for):
    response = client_for(operator_a).get(_lines_url(mixed, "?status=sent"))
    tabs = [(value, count) for value, _label, count, _query in response.context["tabs"]]
    assert tabs == [
        ("", 21),
        ("valid", 6),
        ("processing", 3),
        ("sent", 3),
        ("succeeded", 3),
        ("failed", 3),
        ("invalid", 3),
    ]
    labels = [label for _value, label, _count, _query in response.context["tabs"]]
    assert labels == ["All", "Valid", "Processing", "Sent, awaiting result", "Succeeded", "Failed", "Invalid"]


def test_the_lines_page_reads_the_lines_table_twice(mixed, operator_a, client_for):
    client = client_for(operator_a)
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(_lines_url(mixed)).status_code == 200
    # the page of lines and the counts; no per-line query
    assert len(_batchline_queries(ctx.captured_queries)) == 2


def test_each_line_shows_amount_status_message_result_and_beijing_time(mixed, operator_a, client_for):
    BatchLine.objects.filter(batch=mixed).update(updated_at=datetime(2024, 5, 31, 16, 30, 5, tzinfo=UTC))
    response = client_for(operator_a).get(_lines_url(mixed))
    rows = {line.line_no: (label, outcome, column) for line, label, outcome, column in response.context["rows"]}
    assert rows[7] == ("Invalid", "Amount must be digits", "Amount")  # the kind's message and column label
    assert rows[5] == ("Succeeded", "00 成功", "")  # the gateway's answer
    assert rows[6] == ("Failed", "61 declined", "")
    assert rows[1] == ("Valid", "", "")
    html = response.content.decode()
    assert "2024-06-01 00:30:05" in html  # 16:30:05 UTC is 00:30:05 the next day in Beijing
    assert "7.01" in html  # line 7: 701 fen
    assert "needs_query" not in html


def test_chinese_labels(mixed, operator_a, client_for):
    operator_a.language = "zh-hans"
    operator_a.save(update_fields=["language"])
    response = client_for(operator_a).get(_lines_url(mixed), HTTP_ACCEPT_LANGUAGE="zh-hans")
    html = response.content.decode()
    labels = [label for _value, label, _count, _query in response.context["tabs"]]
    assert labels == ["全部", "有效", "处理中", "已发送，等待结果", "成功", "失败", "无效"]
    assert "批次 %s 的明细" % mixed.pk in html
    assert "订单号（精确）" in html and "说明或结果" in html and "更新时间（北京时间）" in html
    rows = {line.line_no: label for line, label, _outcome, _column in response.context["rows"]}
    assert (rows[3], rows[4], rows[7]) == ("处理中", "已发送，等待结果", "无效")


def test_the_batch_page_links_to_the_lines_with_the_counts(mixed, operator_a, client_for):
    client = client_for(operator_a)
    response = client.get(reverse("batches:detail", args=[mixed.pk]))
    html = response.content.decode()
    assert [count for _v, _l, count in response.context["line_counts"]] == [21, 6, 3, 3, 3, 3, 3]
    url = reverse("batches:lines", args=[mixed.pk])
    assert f'href="{url}?status=failed&amp;back=/batches/{mixed.pk}/"' in html
    assert f'href="{url}?back=/batches/{mixed.pk}/"' in html


def test_the_progress_poll_does_not_count_lines(mixed, operator_a, client_for):
    client = client_for(operator_a)
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(reverse("batches:progress", args=[mixed.pk]), HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert _batchline_queries(ctx.captured_queries) == []


def test_the_refund_batch_page_links_to_the_lines_and_back(operator_a, client_for):
    batch = make_batch(operator_a, ["valid", "invalid"], kind="refund", status="validated")
    client = client_for(operator_a)
    page = f"/refunds/batches/{batch.pk}/"
    html = client.get(page).content.decode()
    lines_url = reverse("batches:lines", args=[batch.pk])
    assert f'href="{lines_url}?back={page}"' in html
    # the lines page leads back to the refund batch page (with its review), and keeps it while filtering
    response = client.get(f"{lines_url}?back={page}")
    assert response.context["detail_url"] == page
    assert [query for value, _l, _c, query in response.context["tabs"] if value == "invalid"] == [
        f"?status=invalid&back={page.replace('/', '%2F')}"
    ]


@pytest.mark.parametrize("back", ["https://evil.example/", "//evil.example/x", "/refunds/batches/999999/", "/x/"])
def test_the_way_back_is_only_ever_a_page_of_this_batch(mixed, operator_a, client_for, back):
    response = client_for(operator_a).get(_lines_url(mixed), {"back": back})
    assert response.context["detail_url"] == f"/batches/{mixed.pk}/"


def test_another_organisation_gets_404_and_no_audit(mixed, operator_b, client_for):
    client = client_for(operator_b)
    before = AuditEvent.objects.count()
    assert client.get(_lines_url(mixed)).status_code == 404
    assert client.get(_lines_url(mixed, "?status=failed&order_id=O000006")).status_code == 404
    assert AuditEvent.objects.count() == before


def test_access_rules_of_the_page(mixed, operator_a, admin_a, merchant_auditor, client_for):
    url = _lines_url(mixed)
    response = Client().get(url)
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
    password_only = Client()
    login_password_only(password_only, operator_a)
    response = password_only.get(url)
    assert response.status_code == 302 and response["Location"].startswith("/accounts/verify/")
    assert client_for(admin_a).get(url).status_code == 403  # merchant admin: no batch permission
    assert client_for(merchant_auditor).get(url).status_code == 200  # read access


@pytest.fixture
def audit_only_kind(demo_kind):
    """The demo kind under another code, viewable with the audit export permission only."""
    from dataclasses import replace

    from portal.accounts.roles import Perm
    from portal.batches.registry import register_batch_kind, unregister_batch_kind

    register_batch_kind(replace(demo_kind, code="sealed", view_perm=Perm.AUDIT_EXPORT))
    yield "sealed"
    unregister_batch_kind("sealed")


def test_a_kind_the_user_may_not_view_is_refused(audit_only_kind, operator_a, client_for):
    # given a batch of a kind whose view permission the operator lacks
    batch = make_batch(operator_a, ["valid"], kind=audit_only_kind)
    client = client_for(operator_a)
    before = AuditEvent.objects.count()
    # then its lines page is 403 and the API does not show it at all
    assert client.get(_lines_url(batch)).status_code == 403
    assert client.get(_api(batch)).status_code == 404
    assert AuditEvent.objects.count() == before


# --- the API ---------------------------------------------------------------------------------------


def _api(batch, query: str = "") -> str:
    return f"/api/v1/batches/{batch.pk}/lines/{query}"


def test_api_pages_by_cursor_and_filters_like_the_page(operator_a, client_for):
    batch = make_batch(operator_a, ["valid"] * 120 + ["failed"] * 80 + ["succeeded"] * 5)
    client = client_for(operator_a)
    first = client.get(_api(batch)).json()
    assert [r["line"] for r in first["results"]] == list(range(1, 101)) and first["previous"] is None
    second = client.get(first["next"]).json()
    assert [r["line"] for r in second["results"]] == list(range(101, 201))
    third = client.get(second["next"]).json()
    assert [r["line"] for r in third["results"]] == list(range(201, 206)) and third["next"] is None
    assert [r["line"] for r in client.get(third["previous"]).json()["results"]] == list(range(101, 201))

    failed = client.get(_api(batch, "?status=failed")).json()
    assert [r["line"] for r in failed["results"]] == list(range(121, 201)) and failed["next"] is None
    assert failed["results"][0] == {
        "line": 121,
        "order_id": "O000121",
        "amount": 12101,
        "status": "failed",
        "status_label": "Failed",
        "error_code": "",
        "error_column": "",
        "message": "61 declined",
        "result": {"respCode": "61", "respMsg": "declined"},
        "updated_at": failed["results"][0]["updated_at"],
    }
    found = client.get(_api(batch, "?order_id=O000203")).json()
    assert [(r["line"], r["status"], r["result"]["queryId"]) for r in found["results"]] == [(203, "succeeded", "Q203")]


def test_api_line_of_an_invalid_line_in_chinese(mixed, operator_a, client_for):
    operator_a.language = "zh-hans"
    operator_a.save(update_fields=["language"])
    body = client_for(operator_a).get(_api(mixed, "?status=invalid"), HTTP_ACCEPT_LANGUAGE="zh-hans").json()
    row = body["results"][0]
    assert (row["line"], row["status_label"], row["error_code"], row["error_column"]) == (
        7,
        "无效",
        "demo_amount",
        "amount",
    )
    assert row["message"] == "Amount must be digits"  # the demo kind's message has no translation


@pytest.mark.parametrize("query", ["?status=bogus", "?order_id=" + "x" * 65])
def test_api_refuses_a_bad_filter(mixed, operator_a, client_for, query):
    response = client_for(operator_a).get(_api(mixed, query))
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid"


@pytest.mark.parametrize("position", ["abc", "-1", "99999999999"])
def test_api_refuses_a_forged_cursor(mixed, operator_a, client_for, position):
    cursor = base64.b64encode(f"p={position}".encode()).decode()
    response = client_for(operator_a).get(_api(mixed), {"cursor": cursor})
    assert response.status_code == 404


def test_api_another_organisation_gets_404(mixed, operator_b, client_for):
    client = client_for(operator_b)
    assert client.get(_api(mixed)).status_code == 404
    assert client.get(f"/api/v1/batches/{mixed.pk}/").status_code == 404
    assert mixed.pk not in [b["id"] for b in client.get("/api/v1/batches/").json()["results"]]


def test_api_access_rules(mixed, operator_a, admin_a, client_for):
    assert Client().get(_api(mixed)).status_code == 401
    password_only = Client()
    login_password_only(password_only, operator_a)
    assert password_only.get(_api(mixed)).status_code == 401
    assert client_for(admin_a).get(_api(mixed)).status_code == 403
    listed = client_for(operator_a).get("/api/v1/batches/").json()["results"]
    assert [b["id"] for b in listed] == [mixed.pk]


def test_api_lines_read_by_keyset(operator_a, client_for):
    batch = make_batch(operator_a, ["valid"] * 150)
    client = client_for(operator_a)
    second_url = client.get(_api(batch)).json()["next"]
    with CaptureQueriesContext(connection) as ctx:
        body = client.get(second_url).json()
    assert [r["line"] for r in body["results"]] == list(range(101, 151))
    sqls = _batchline_queries(ctx.captured_queries)
    assert len(sqls) == 1 and '"line_no" > 100' in sqls[0] and "OFFSET" not in sqls[0].upper()
