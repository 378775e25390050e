"""The reconciliation journey in a real browser (issue 5).

A settlement day of merchant A is closed (ledger rows, then the close service, which produces the day's
files). The merchant reviewer downloads the day's network zip from the reconciliation files page, imports
an upstream file built from it with one amount altered, finds the one "amount differs" discrepancy and
asks to adjust the ledger; a second person (an acquirer reviewer: the default policy of
``reconciliation.adjust``) approves it with a fresh code, and the discrepancy shows resolved.
"""

from __future__ import annotations

import dataclasses
import io
import re
import zipfile
from datetime import datetime, time, timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from payments.cards import card_hash, mask_pan
from payments.gateway.acp.reconfiles import ZMRecord, build_zip, parse_zm, write_zm, zip_name
from payments.models import Transaction
from payments.settlement import business_today, business_tz, settlement_date_for
from portal.approvals.models import ApprovalRequest
from reconciliation.models import FeeRate, ReconciliationFile
from reconciliation.services import settlement_close_day
from reconciliation.upstream.approvals import DEFAULT_STAGES
from reconciliation.upstream.models import Discrepancy
from tests.factories import PASSWORD

from .journeys import confirm_step_up, make_step_up_stale, newest_sms_id, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PANS = ("6222021234567890128", "6258071234567890126")
ZM_LINE = 607


def seed_day(merchant, day) -> list[Transaction]:
    """Five successful payments of ``day`` (debit and credit cards), each with its network trace fields."""
    tz = business_tz()
    rows = []
    for index in range(5):
        when = datetime.combine(day, time(9, 0), tzinfo=tz) + timedelta(minutes=37 * index)
        pan = PANS[index % 2]
        rows.append(
            Transaction.objects.create(
                merchant=merchant,
                acquirer_id=merchant.acquirer_id,
                order_id=f"RJ{day:%Y%m%d}{index:04d}",
                txn_time=when,
                txn_type="01",
                amount=1_000 * (index + 1) + 88,
                status="success",
                resp_code="00",
                query_id=f"{when:%Y%m%d%H%M%S}{index:07d}",
                trace_no=f"{100 + index:06d}",
                trace_time=when.strftime("%m%d%H%M%S"),
                settle_date=settlement_date_for(when),
                card_masked=mask_pan(pan),
                card_hash=card_hash(pan),
                card_type="01" if index % 2 == 0 else "02",
                source="sandbox",
            )
        )
    assert {row.settle_date for row in rows} == {day}
    return rows


def test_reconciliation_journey(
    settings, tmp_path, browser_context_for, live_server, screenshot, merchant_a, reviewer_a, acquirer_reviewer
):
    base = live_server.url
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.CELERY_TASK_ALWAYS_EAGER = True
    # --- given: a closed settlement day of merchant A, its files produced -----------------------------------
    FeeRate.objects.create(card_class="debit", rate_bp=38, min_fee=10, max_fee=2000)
    FeeRate.objects.create(card_class="credit", rate_bp=60, min_fee=0, max_fee=None)
    FeeRate.objects.create(card_class="other", rate_bp=100, min_fee=0, max_fee=None)
    day = business_today() - timedelta(days=3)
    ledger = seed_day(merchant_a, day)
    settlement_close_day(actor=None, day=day, now=timezone.now())
    name = zip_name(day, merchant_a.code)
    assert name == f"{merchant_a.code}_{day:%Y%m%d}.zip"
    assert ReconciliationFile.objects.filter(organisation=merchant_a, day=day, name=name).exists()

    # --- the merchant reviewer downloads the day's zip -------------------------------------------------------
    page = browser_context_for().new_page()
    sign_in(page, base, reviewer_a, PASSWORD)
    page.get_by_role("link", name="Settlement & reconciliation", exact=True).click()
    page.get_by_test_id("reconciliation-subnav").get_by_role("link", name="Reconciliation files").click()
    page.get_by_label("Settlement day").fill(day.isoformat())
    page.get_by_role("button", name="Search").click()
    row = page.get_by_test_id("file-list").locator("tbody tr").filter(has_text=name)
    expect(row).to_have_count(1)
    screenshot(page, "reconciliation-files")
    with page.expect_download() as info:
        row.get_by_role("link", name="Download").click()
    assert info.value.suggested_filename == name
    with open(info.value.path(), "rb") as handle:
        ours = handle.read()
    with zipfile.ZipFile(io.BytesIO(ours)) as archive:
        members = archive.namelist()
        zm_member = next(m for m in members if "ZM_" in m)
        zm_bytes = archive.read(zm_member)
    lines = [line for line in zm_bytes.split(b"\r\n") if line]
    assert len(lines) == len(ledger)
    assert {len(line) for line in lines} == {ZM_LINE}

    # --- an upstream file of that day with one amount altered --------------------------------------------
    records = [r for r in parse_zm(zm_bytes)]
    assert all(isinstance(r, ZMRecord) for r in records) and len(records) == len(ledger)
    altered = records[2]
    records[2] = dataclasses.replace(altered, amount=altered.amount + 500, settle_amount=altered.settle_amount + 500)
    upstream_name, upstream = build_zip(mer_id=merchant_a.code, settle_date=day, zm=write_zm(records))
    assert upstream_name == name

    # --- imported through the upload form: one discrepancy, the amount -----------------------------------------
    page.get_by_test_id("reconciliation-subnav").get_by_role("link", name="Upstream reconciliation").click()
    page.get_by_test_id("import-link").click()
    page.get_by_label("Upstream file").set_input_files(
        {"name": upstream_name, "mimeType": "application/zip", "buffer": upstream}
    )
    page.get_by_role("button", name="Import").click()
    expect(page).to_have_url(re.compile(r"/settlement/upstream/runs/\d+/$"))
    expect(page.get_by_test_id("run-status")).to_have_text("Completed")
    classes = page.get_by_test_id("class-totals")
    expect(classes.get_by_test_id("class-matched").locator("td").nth(1)).to_have_text(str(len(ledger) - 1))
    expect(classes.get_by_test_id("class-amount").locator("td").nth(1)).to_have_text("1")
    for other in ("upstream_only", "ledger_only", "status", "fee"):
        expect(classes.get_by_test_id(f"class-{other}").locator("td").nth(1)).to_have_text("0")
    screenshot(page, "reconciliation-run")
    classes.get_by_role("link", name="Amount differs").click()
    listing = page.get_by_test_id("discrepancy-table").get_by_test_id("discrepancy-row")
    expect(listing).to_have_count(1)
    discrepancy = Discrepancy.objects.get(merchant=merchant_a)
    assert (discrepancy.cls, discrepancy.query_id) == ("amount", altered.query_id)
    assert (discrepancy.ledger_amount, discrepancy.upstream_amount) == (altered.amount, altered.amount + 500)
    listing.get_by_role("link", name=str(discrepancy.pk)).click()

    # --- resolve by adjusting the ledger: a second person must approve ----------------------------------------
    resolve = page.get_by_test_id("resolve-form")
    resolve.get_by_label("Resolution").select_option(label="Adjust the ledger")
    resolve.get_by_label("Reason").fill("The network booked 5 yuan more; adjust to the network's amount.")
    resolve.get_by_role("button", name="Resolve").click()
    expect(page.get_by_test_id("status")).to_have_text("Waiting for approval")
    expect(page.get_by_test_id("approval-decide")).to_have_count(0)  # the maker cannot approve
    screenshot(page, "reconciliation-pending-approval")
    approval = ApprovalRequest.objects.get(kind="reconciliation.adjust", object_id=str(discrepancy.pk))
    assert [(s.role, s.org_id) for s in approval.stages.all()] == [(DEFAULT_STAGES[0]["role"], merchant_a.acquirer_id)]

    # --- the acquirer reviewer approves it with a fresh code -------------------------------------------------
    checker_context = browser_context_for()
    checker = checker_context.new_page()
    sign_in(checker, base, acquirer_reviewer, PASSWORD)
    checker.get_by_test_id("approvals-waiting").click()
    expect(checker).to_have_url(f"{base}/approvals/")
    inbox = checker.get_by_test_id("approvals-inbox")
    expect(inbox.locator("tbody tr")).to_have_count(1)
    inbox.get_by_role("link", name="Review").click()
    expect(checker).to_have_url(f"{base}/settlement/upstream/discrepancies/{discrepancy.pk}/")
    make_step_up_stale(checker_context)
    before = newest_sms_id(acquirer_reviewer.phone)
    checker.get_by_test_id("approval-decide").get_by_role("button", name="Approve").click()
    confirm_step_up(checker, acquirer_reviewer.phone, before)
    discrepancy.refresh_from_db()
    assert discrepancy.status == "pending_approval", "a stale second factor must not approve"
    checker.get_by_test_id("approval-decide").get_by_role("button", name="Approve").click()
    expect(checker.get_by_test_id("status")).to_have_text("Resolved — Adjust the ledger")
    screenshot(checker, "reconciliation-resolved")

    # --- the maker sees it resolved too ----------------------------------------------------------------------
    page.reload()
    expect(page.get_by_test_id("status")).to_have_text("Resolved — Adjust the ledger")
    expect(page.get_by_test_id("resolve-form")).to_have_count(0)
    discrepancy.refresh_from_db()
    approval.refresh_from_db()
    assert (discrepancy.status, discrepancy.resolution, approval.status) == ("resolved", "adjust_ledger", "approved")
