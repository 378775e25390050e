"""The error summary: invalid lines per error code and column, on the batch page, the review page and the API."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import translation

from portal.batches.api.serializers import BatchSerializer
from portal.batches.models import Batch, BatchLine
from portal.batches.selectors import batch_error_summary
from portal.batches.services import batch_upload

from .conftest import text_file

pytestmark = pytest.mark.django_db

# 1 valid line; 3 bad amounts, 2 too big (found by the kind's validation), 1 with three fields, 1 order id twice.
LINES = ["A1|100", "A2|x", "A3|y", "A4|z", "A5|1|2", "A6|2000000", "A7|3000000", "A1|5"]

EXPECTED = [
    {"code": "demo_amount", "column": "amount", "count": 3, "message": "Amount must be digits"},
    {"code": "demo_too_big", "column": "amount", "count": 2, "message": "Amount too big"},
    {"code": "demo_columns", "column": "", "count": 1, "message": "… cols"},
    {
        "code": "duplicate_order_id_in_file",
        "column": "orderId",
        "count": 1,
        "message": "Order ID … already appears on line … of this file.",
    },
]


@pytest.fixture
def batch(operator_a, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        b = batch_upload(actor=operator_a, kind="demo", uploaded_file=text_file(LINES))
    b.refresh_from_db()
    assert (b.status, b.valid_lines, b.invalid_lines) == ("validated", 1, 7)
    return b


def _api(summary: list[dict]) -> list[dict]:
    return [{k: g[k] for k in ("code", "column", "count", "message")} for g in summary]


def test_summary_counts_per_code_and_column_most_frequent_first_in_one_query(batch, django_assert_num_queries):
    with django_assert_num_queries(1) as captured:
        summary = batch_error_summary(batch)
    assert _api(summary) == EXPECTED
    assert [g["column_label"] for g in summary] == ["Amount", "Amount", "", "Order ID"]
    sql = captured.captured_queries[0]["sql"].upper()
    assert "GROUP BY" in sql and "COUNT(*)" in sql


def test_summary_groups_by_column_too(batch):
    # the same code in two columns is two rows
    BatchLine.objects.filter(batch=batch, line_no=2).update(error_column="orderId")
    rows = {(g["code"], g["column"]): g["count"] for g in batch_error_summary(batch)}
    assert (rows[("demo_amount", "amount")], rows[("demo_amount", "orderId")]) == (2, 1)


def test_summary_ignores_valid_and_processed_lines_and_other_batches(
    batch, operator_a, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        other = batch_upload(actor=operator_a, kind="demo", uploaded_file=text_file(["B1|x", "B2|1"]))
    BatchLine.objects.filter(batch=batch, line_no=1).update(status="failed", error_code="demo_amount")
    assert _api(batch_error_summary(batch)) == EXPECTED
    assert _api(batch_error_summary(Batch.objects.get(pk=other.pk)))[0]["count"] == 1


def test_no_invalid_line_no_query(operator_a, django_capture_on_commit_callbacks, django_assert_num_queries):
    with django_capture_on_commit_callbacks(execute=True):
        clean = batch_upload(actor=operator_a, kind="demo", uploaded_file=text_file(["C1|1", "C2|2"]))
    clean.refresh_from_db()
    with django_assert_num_queries(0):
        assert batch_error_summary(clean) == []


def test_summary_message_in_the_active_language(batch):
    with translation.override("zh-hans"):
        summary = {g["code"]: g["message"] for g in batch_error_summary(batch)}
    assert summary["duplicate_order_id_in_file"] == "订单号 … 已出现在本文件的第 … 行。"


@pytest.mark.parametrize("who", ["operator_a", "reviewer_a"])
def test_maker_and_reviewer_see_the_summary_on_the_batch_page(batch, request, client_for, who):
    html = client_for(request.getfixturevalue(who)).get(reverse("batches:detail", args=[batch.pk])).content.decode()
    assert 'data-testid="error-summary"' in html and "Error summary" in html
    assert html.index('data-code="demo_amount"') < html.index('data-code="demo_too_big"')
    assert '<tr data-code="demo_amount" data-column="amount"><td><code>demo_amount</code></td><td>Amount</td>' in html
    assert html.count('data-testid="error-count"') == 4


def test_a_batch_without_errors_shows_no_summary(operator_a, client_for, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        clean = batch_upload(actor=operator_a, kind="demo", uploaded_file=text_file(["C1|1"]))
    html = client_for(operator_a).get(reverse("batches:detail", args=[clean.pk])).content.decode()
    assert 'data-testid="error-summary"' not in html


@pytest.fixture
def refund_batch(merchant_a, operator_a):
    """A validated refund batch with two invalid lines (written directly: the page and API only read it)."""
    batch = Batch.objects.create(
        kind="refund",
        organisation=merchant_a,
        merchant=merchant_a,
        uploaded_by=operator_a,
        original_name="refunds.txt",
        stored_name="summary-test",
        file_format="text",
        size=10,
        sha256="0" * 64,
        status="validated",
        total_lines=3,
        valid_lines=1,
        invalid_lines=2,
    )
    BatchLine.objects.bulk_create(
        [
            BatchLine(batch=batch, line_no=3, status="valid", amount=100, order_id="R0000001"),
            BatchLine(
                batch=batch,
                line_no=4,
                status="invalid",
                error_code="amount_exceeds",
                error_column="txnAmt",
                error_params={"amount": "9.00", "refundable": "1.00"},
            ),
            BatchLine(batch=batch, line_no=5, status="invalid", error_code="orig_not_found", error_column="origQryId"),
        ]
    )
    return batch


def test_the_refund_review_page_shows_the_summary_in_the_reviewers_language(refund_batch, reviewer_a, client_for):
    reviewer_a.language = "zh-hans"
    reviewer_a.save(update_fields=["language"])
    response = client_for(reviewer_a).get(reverse("refunds:batch_detail", args=[refund_batch.pk]))
    html = response.content.decode()
    assert response.status_code == 200
    assert "错误汇总" in html and 'data-testid="error-summary"' in html
    assert "金额（… 元）超过原消费交易的剩余可退货金额" in html
    assert "该商户没有与本行所指原交易相符的消费交易。" in html


def test_api_exposes_the_summary_on_one_batch_and_null_in_lists(refund_batch, operator_a, client_for):
    client = client_for(operator_a)
    one = client.get(f"/api/v1/refund-batches/{refund_batch.pk}/", HTTP_ACCEPT_LANGUAGE="en")
    assert one.status_code == 200
    assert one.json()["error_summary"] == [
        {
            "code": "amount_exceeds",
            "column": "txnAmt",
            "count": 1,
            "message": "The amount (… yuan) is more than what can still be refunded of the original payment after "
            "earlier refunds, pending refunds and earlier lines of this file: … yuan.",
        },
        {
            "code": "orig_not_found",
            "column": "origQryId",
            "count": 1,
            "message": "No payment of this merchant matches the original named on this line.",
        },
    ]
    listed = client.get("/api/v1/refund-batches/").json()
    rows = listed["results"] if isinstance(listed, dict) else listed
    assert [(r["id"], r["error_summary"]) for r in rows] == [(refund_batch.pk, None)]


def test_serializer_field(batch):
    assert BatchSerializer(batch).data["error_summary"] == EXPECTED
    assert BatchSerializer([batch], many=True).data[0]["error_summary"] is None
