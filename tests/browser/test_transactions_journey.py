"""The transactions journey in a real browser (issue 3).

Sandbox traffic reaches the ledger through the real notification receiver on the live server; the
merchant operator signs in with the SMS code, sees the dashboard charts on the home page, searches the
history by status and amount range, reads the totals line, opens a transaction, downloads the CSV of the
search (as many rows as the totals line says) and gets the 404 page for another merchant's transaction.
"""

from __future__ import annotations

import csv
import io
import re
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command
from playwright.sync_api import expect

from payments.models import Transaction
from payments.money import format_yuan
from payments.selectors import PAGE_SIZE
from tests.factories import PASSWORD

from .journeys import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def load_traffic(*merchants) -> str:
    out = StringIO()
    args = ["--days", "3", "--per-day", "12", "--seed", "journey", "--concurrency", "1"]
    for merchant in merchants:
        args += ["--merchant", merchant.code]
    call_command("sandbox_traffic", *args, stdout=out)
    return out.getvalue()


def yuan(fen: int) -> str:
    return str(Decimal(fen) / 100)


def test_transactions_journey(live_sandbox, page, screenshot, merchant_a, merchant_b, operator_a):
    base = live_sandbox.url
    # --- given: three days of sandbox payments of both merchants in the ledger, by notification --------
    load_traffic(merchant_a, merchant_b)
    ours = Transaction.objects.filter(merchant=merchant_a)
    assert ours.count() == 36
    assert set(ours.values_list("source", flat=True)) == {"notification"}
    amounts = sorted(ours.filter(status="success").values_list("amount", flat=True))
    low, high = amounts[len(amounts) // 4], amounts[3 * len(amounts) // 4]
    expected = ours.filter(status="success", amount__gte=low, amount__lte=high)
    count = expected.count()
    total = sum(expected.values_list("amount", flat=True))
    assert 0 < count < ours.count()

    # --- the operator signs in and sees the dashboard charts on the home page ------------------------
    sign_in(page, base, operator_a, PASSWORD)
    charts = page.get_by_test_id("dashboard-charts")
    expect(charts).to_be_visible()
    expect(charts.locator("img[data-chart]").first).to_be_visible()
    assert charts.locator("img[data-chart]").count() >= 2
    successes = ours.filter(status="success").count()
    expect(charts.locator("[data-kpi=count]")).to_have_text(str(successes))
    screenshot(page, "transactions-home-dashboard")

    # --- Transactions → history, search by status and an amount range --------------------------------
    page.get_by_role("link", name="Transactions", exact=True).click()
    expect(page).to_have_url(re.compile(r"/transactions/$"))
    page.get_by_test_id("payments-subnav").get_by_role("link", name="Transaction history").click()
    expect(page).to_have_url(re.compile(r"/transactions/history/$"))
    search = page.get_by_test_id("txn-search")
    search.get_by_label("Status").select_option("success")
    search.get_by_label("Minimum amount (yuan)").fill(yuan(low))
    search.get_by_label("Maximum amount (yuan)").fill(yuan(high))
    search.get_by_role("button", name="Search").click()
    expect(page).to_have_url(re.compile(r"/transactions/history/\?.*status=success"))
    totals = page.get_by_test_id("totals")
    plural = "transaction" if count == 1 else "transactions"
    expect(totals).to_contain_text(f"Total: {count} {plural}, {format_yuan(total)} yuan")
    rows = page.get_by_test_id("txn-table").locator("tbody tr")
    expect(rows).to_have_count(min(count, PAGE_SIZE))
    screenshot(page, "transactions-history-filtered")

    # --- open one transaction ---------------------------------------------------------------------------
    first_order = rows.first.get_by_role("link").inner_text().strip()
    rows.first.get_by_role("link", name=first_order).click()
    txn = expected.get(order_id=first_order)
    expect(page).to_have_url(f"{base}/transactions/{txn.pk}/")
    fields = page.get_by_test_id("txn-fields")
    expect(fields).to_contain_text(txn.query_id)
    expect(fields).to_contain_text(format_yuan(txn.amount))
    screenshot(page, "transactions-detail")
    page.go_back()
    expect(totals).to_contain_text(f"Total: {count} {plural}")

    # --- download the CSV of the search: one row per transaction of the totals line ----------------------
    export = page.get_by_test_id("export-form")
    export.get_by_label("File format").select_option("csv")
    with page.expect_download() as info:
        export.get_by_role("button", name="Download details").click()
    download = info.value
    assert re.fullmatch(r"transactions_\d{14}\.csv", download.suggested_filename)
    with open(download.path(), "rb") as handle:
        text = handle.read().decode("utf-8-sig")
    lines = list(csv.reader(io.StringIO(text)))
    header, body = lines[0], [line for line in lines[1:] if line]
    assert "Order ID" in header
    assert len(body) == count
    order_column = header.index("Order ID")
    assert {line[order_column] for line in body} == set(expected.values_list("order_id", flat=True))

    # --- another merchant's transaction is not found ----------------------------------------------------
    theirs = Transaction.objects.filter(merchant=merchant_b).first()
    response = page.goto(f"{base}/transactions/{theirs.pk}/")
    assert response.status == 404
    expect(page.locator("body")).not_to_contain_text(theirs.order_id)
    screenshot(page, "transactions-other-merchant-404")
