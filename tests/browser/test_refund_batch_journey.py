"""The batch refund journey in a real browser (issue 4).

The operator uploads a text refund file built from real ledger payments with two bad lines (an unknown
original, an amount over what is refundable), downloads the error report and submits the batch; the
reviewer, signed in in a second browser, approves it with a fresh code (step-up); the refunds go to the
embedded sandbox acquirer over HTTP (jobs run at once in the live server); the operator downloads the
result file: respCode 00 for the good lines, the reasons for the bad ones.
"""

from __future__ import annotations

import csv
import io
import re
from io import StringIO

import pytest
from django.core.management import call_command
from playwright.sync_api import expect

from payments.models import Transaction
from payments.sandbox.models import SandboxTransaction
from portal.batches.models import Batch
from tests.factories import PASSWORD

from .journeys import confirm_step_up, make_step_up_stale, newest_sms_id, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

UNKNOWN_QUERY_ID = "209901010000000000001"


def refund_amount(payment: Transaction) -> int:
    """About half of the payment in whole yuan (never ending in 99 fen: the sandbox declines those)."""
    return max(100, payment.amount // 200 * 100)


def refund_file(rows: list[tuple[str, int, str, str]]) -> bytes:
    """The text format of the format page: header with totals, title line, one ``|`` line per refund."""
    lines = [f"5.0.0|{sum(r[1] for r in rows)}|{len(rows)}||", "orderId|txnAmt|origQryId|reason"]
    lines += ["|".join(str(value) for value in row) for row in rows]
    return ("\r\n".join(lines) + "\r\n").encode()


def test_refund_batch_journey(live_sandbox, browser_context_for, screenshot, merchant_a, operator_a, reviewer_a):
    base = live_sandbox.url
    # --- given: payments of earlier days, known to the sandbox network and delivered to the ledger --------
    call_command(
        "sandbox_traffic", "--days", "4", "--per-day", "4", "--merchant", merchant_a.code, "--seed", "rb",
        "--concurrency", "1", stdout=StringIO(),
    )  # fmt: skip
    ledger = Transaction.objects.filter(merchant=merchant_a)
    assert ledger.count() == 16
    latest_day = max(ledger.values_list("settle_date", flat=True))
    payments = list(
        ledger.filter(status="success", txn_type="01", amount__gte=300)
        .exclude(settle_date=latest_day)
        .order_by("txn_time")[:4]
    )
    assert len(payments) == 4
    good = [
        (f"RFJ{index:09d}", refund_amount(payment), payment.query_id, "returned goods")
        for index, payment in enumerate(payments[:3], start=1)
    ]
    over = payments[3]
    rows = [
        good[0],
        good[1],
        ("RFJ000000901", 1000, UNKNOWN_QUERY_ID, "unknown original"),
        good[2],
        ("RFJ000000902", over.amount + 100, over.query_id, "more than was paid"),
    ]

    # --- the operator uploads the file: three valid lines, two refused with their reasons ----------------
    operator_page = browser_context_for().new_page()
    sign_in(operator_page, base, operator_a, PASSWORD)
    operator_page.get_by_role("link", name="Refunds", exact=True).click()
    operator_page.get_by_role("link", name="Batch file format and templates").click()
    expect(operator_page.locator("pre")).to_contain_text("orderId|txnAmt|origQryId|reason")
    operator_page.go_back()
    operator_page.get_by_test_id("upload-refund-batch").click()
    operator_page.get_by_label("File").set_input_files(
        {"name": "refunds-journey.txt", "mimeType": "text/plain", "buffer": refund_file(rows)}
    )
    operator_page.get_by_role("button", name="Upload").click()
    expect(operator_page).to_have_url(re.compile(r"/batches/\d+/$"))
    batch = Batch.objects.get(original_name="refunds-journey.txt")
    expect(operator_page.get_by_test_id("batch-progress")).to_have_attribute("data-status", "validated")
    expect(operator_page.get_by_test_id("valid-lines")).to_have_text("3")
    expect(operator_page.get_by_test_id("invalid-lines")).to_have_text("2")
    expect(operator_page.get_by_test_id("error-table").locator("tbody tr")).to_have_count(2)
    screenshot(operator_page, "refund-batch-validated")

    # --- the error report lists exactly the two bad lines -------------------------------------------------
    with operator_page.expect_download() as info:
        operator_page.get_by_test_id("download-errors").click()
    assert info.value.suggested_filename == f"batch-{batch.pk}-errors.csv"
    with open(info.value.path(), "rb") as handle:
        report = list(csv.reader(io.StringIO(handle.read().decode("utf-8-sig"))))
    assert report[0] == ["Line", "Column", "Error code", "Message", "Order ID"]
    assert [(row[2], row[4]) for row in report[1:]] == [
        ("orig_not_found", "RFJ000000901"),
        ("amount_exceeds", "RFJ000000902"),
    ]

    # --- submitted for review ----------------------------------------------------------------------------
    operator_page.get_by_test_id("submit-batch").click()
    expect(operator_page.get_by_test_id("batch-progress")).to_have_attribute("data-status", "pending_review")
    expect(operator_page.get_by_test_id("submit-batch")).to_have_count(0)
    batch.refresh_from_db()
    assert batch.approval_id is not None

    # --- the reviewer, in another browser, approves with a fresh code --------------------------------------
    reviewer_context = browser_context_for()
    reviewer_page = reviewer_context.new_page()
    sign_in(reviewer_page, base, reviewer_a, PASSWORD)
    reviewer_page.get_by_test_id("approvals-waiting").click()
    expect(reviewer_page).to_have_url(f"{base}/approvals/")
    inbox = reviewer_page.get_by_test_id("approvals-inbox")
    expect(inbox.locator("tbody tr")).to_have_count(1)
    inbox.get_by_role("link", name="Review").click()
    expect(reviewer_page).to_have_url(f"{base}/refunds/batches/{batch.pk}/")
    screenshot(reviewer_page, "refund-batch-review")
    make_step_up_stale(reviewer_context)  # minutes have passed since the sign-in code
    decide = reviewer_page.get_by_test_id("approval-decide")
    before = newest_sms_id(reviewer_a.phone)
    decide.get_by_role("button", name="Approve").click()
    confirm_step_up(reviewer_page, reviewer_a.phone, before)
    expect(reviewer_page).to_have_url(re.compile(rf"/batches/{batch.pk}/$"))
    batch.refresh_from_db()
    assert batch.status == "pending_review", "a stale second factor must not approve"
    reviewer_page.get_by_test_id("approval-decide").get_by_role("button", name="Approve").click()
    expect(reviewer_page.get_by_test_id("approval-history").locator("[data-status]").first).to_have_attribute(
        "data-status", "approved"
    )

    # --- processed against the sandbox: three refunds sent and recorded, none for the bad lines --------------
    batch.refresh_from_db()
    assert (batch.status, batch.succeeded_lines, batch.failed_lines, batch.succeeded_amount) == (
        "completed",
        3,
        0,
        sum(r[1] for r in good),
    )
    for order_id, amount, query_id, _reason in good:
        network = SandboxTransaction.objects.get(order_id=order_id)
        assert (network.txn_type, network.amount, network.orig_query_id) == ("04", amount, query_id)
    assert not SandboxTransaction.objects.filter(order_id__in=["RFJ000000901", "RFJ000000902"]).exists()
    for payment, (_order_id, amount, _query_id, _reason) in zip(payments, good, strict=False):
        payment.refresh_from_db()
        assert payment.refunded_amount == amount

    # --- the operator downloads the result file ----------------------------------------------------------
    operator_page.reload()
    expect(operator_page.get_by_test_id("batch-status")).to_have_text("Completed")
    screenshot(operator_page, "refund-batch-processed")
    with operator_page.expect_download() as info:
        operator_page.get_by_test_id("download-result").click()
    assert info.value.suggested_filename == f"batch-{batch.pk}-result.txt"
    with open(info.value.path(), "rb") as handle:
        result = handle.read().decode("utf-8").split("\r\n")
    total = sum(r[1] for r in rows)
    succeeded = sum(r[1] for r in good)
    assert result[0] == f"5.0.0|{total}|5|||{succeeded}|3"
    title = result[1].split("|")
    by_order = {line.split("|")[0]: dict(zip(title, line.split("|"), strict=True)) for line in result[2:] if line}
    assert set(by_order) == {r[0] for r in rows}
    for order_id, amount, query_id, _reason in good:
        line = by_order[order_id]
        assert (line["txnAmt"], line["origQryId"], line["respCode"]) == (str(amount), query_id, "00")
        assert re.fullmatch(r"\d{21}", line["queryId"])
    for order_id in ("RFJ000000901", "RFJ000000902"):
        assert by_order[order_id]["respCode"] == ""
        assert by_order[order_id]["respMsg"]
