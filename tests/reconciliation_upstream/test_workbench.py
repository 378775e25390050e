"""Workbench pages, API and flows: permissions, tenant 404s, assign / comment / resolve, maker-checker adjustment."""

from __future__ import annotations

import time

import pytest
from django.test import Client
from django.urls import reverse

from payments.models import Transaction
from portal.approvals import errors as approval_errors
from portal.approvals.models import ApprovalRequest
from portal.approvals.services import approval_decide
from portal.audit.models import AuditEvent
from reconciliation.upstream.choices import RunSource
from reconciliation.upstream.importer import reconciliation_import
from reconciliation.upstream.models import Discrepancy
from reconciliation.upstream.services import WorkbenchError, discrepancy_resolve
from tests.factories import UserFactory, login_password_only

from .conftest import AFTER_CLOSE, record_of, upstream_zip


@pytest.fixture
def day_a(merchant_a, ledger_day):
    """A's day with one amount difference and one upstream-only line; returns the run."""
    txns = ledger_day(merchant_a, 3)
    extra = record_of(txns[0], query_id="202603109999999999999", order_id="EXTRA0001", amount=777)
    name, data = upstream_zip(
        merchant_a.code, [record_of(txns[0]), record_of(txns[1], amount=txns[1].amount + 5), record_of(txns[2]), extra]
    )
    return reconciliation_import(actor=None, source=RunSource.COMMAND, data=data, file_name=name, now=AFTER_CLOSE)


def urls(day_a):
    d = Discrepancy.objects.filter(run=day_a).first()
    return [
        reverse("reconciliation:upstream_run_list"),
        reverse("reconciliation:upstream_run_detail", args=[day_a.pk]),
        reverse("reconciliation:upstream_discrepancy_list"),
        reverse("reconciliation:upstream_discrepancy_detail", args=[d.pk]),
        f"/api/v1/reconciliation/runs/{day_a.pk}/",
        f"/api/v1/reconciliation/discrepancies/{d.pk}/",
    ]


def test_pages_show_the_run_and_discrepancies(day_a, client_for, reviewer_a):
    client = client_for(reviewer_a)
    for url in urls(day_a):
        assert client.get(url).status_code == 200, url
    page = client.get(reverse("reconciliation:upstream_run_detail", args=[day_a.pk])).content.decode()
    assert 'data-testid="class-amount"' in page
    listing = client.get(reverse("reconciliation:upstream_discrepancy_list") + "?cls=upstream_only").content.decode()
    assert listing.count('data-testid="discrepancy-row"') == 1
    api = client.get("/api/v1/reconciliation/discrepancies/?cls=amount").json()
    assert api["count"] == 1 and api["results"][0]["ledger_amount"] + 5 == api["results"][0]["upstream_amount"]
    run = client.get(f"/api/v1/reconciliation/runs/{day_a.pk}/").json()
    assert run["class_totals"]["amount"]["count"] == 1 and run["record_count"] == 4


def test_anonymous_is_sent_to_login(day_a):
    client = Client()
    for url in urls(day_a)[:4]:
        response = client.get(url)
        assert response.status_code == 302 and "/accounts/login/" in response["Location"], url
    for url in urls(day_a)[4:]:
        assert client.get(url).status_code in (401, 403), url


def test_password_only_session_is_sent_to_verify(day_a, reviewer_a):
    client = Client()
    login_password_only(client, reviewer_a)
    for url in urls(day_a)[:4]:
        response = client.get(url)
        assert response.status_code == 302 and "/accounts/verify/" in response["Location"], url


def test_other_organisation_gets_404(day_a, client_for, merchant_b):
    stranger = UserFactory(organisation=merchant_b, username="b.reviewer", roles=["merchant_reviewer"])
    client = client_for(stranger)
    for url in urls(day_a)[1::2] + urls(day_a)[3:4] + urls(day_a)[5:]:
        assert client.get(url).status_code == 404, url
    d = Discrepancy.objects.filter(run=day_a).first()
    before = AuditEvent.objects.count()
    response = client.post(reverse("reconciliation:upstream_discrepancy_action", args=[d.pk, "comment"]), {"body": "x"})
    assert response.status_code == 404
    assert (
        client.get(reverse("reconciliation:upstream_discrepancy_list")).content.decode().count("discrepancy-row") == 0
    )
    assert AuditEvent.objects.count() == before and d.comments.count() == 0


def test_missing_permission_is_403_without_side_effect(day_a, client_for, admin_a, operator_a):
    d = Discrepancy.objects.filter(run=day_a).first()
    before = AuditEvent.objects.count()
    assert client_for(admin_a).get(reverse("reconciliation:upstream_run_list")).status_code == 403
    operator = client_for(operator_a)  # may read, may not act
    assert operator.get(reverse("reconciliation:upstream_discrepancy_list")).status_code == 200
    assert operator.get(reverse("reconciliation:upstream_import")).status_code == 403
    response = operator.post(
        reverse("reconciliation:upstream_discrepancy_action", args=[d.pk, "comment"]), {"body": "x"}
    )
    assert response.status_code == 403
    api = operator.post(f"/api/v1/reconciliation/discrepancies/{d.pk}/comment/", {"body": "x"})
    assert api.status_code == 403
    assert AuditEvent.objects.count() == before and d.comments.count() == 0


def test_upload_imports_a_file(client_for, reviewer_a, merchant_a, ledger_day, time_machine):
    time_machine.move_to(AFTER_CLOSE)
    txns = ledger_day(merchant_a, 2)
    name, data = upstream_zip(merchant_a.code, [record_of(t) for t in txns])
    from django.core.files.uploadedfile import SimpleUploadedFile

    response = client_for(reviewer_a).post(
        reverse("reconciliation:upstream_import"), {"file": SimpleUploadedFile(name, data)}
    )

    run = reviewer_a.organisation.upstream_runs.get()
    assert response.status_code == 302 and response["Location"].endswith(f"/runs/{run.pk}/")
    assert run.source == "upload" and run.created_by == reviewer_a and run.record_count == 2


def test_assign_comment_and_write_off(day_a, client_for, reviewer_a):
    d = Discrepancy.objects.get(run=day_a, cls="amount")
    client = client_for(reviewer_a)
    action = lambda name: reverse("reconciliation:upstream_discrepancy_action", args=[d.pk, name])  # noqa: E731

    client.post(action("assign"), {"assignee": str(reviewer_a.pk)})
    client.post(action("comment"), {"body": "Asked the acquirer."})
    client.post(action("resolve"), {"resolution": "write_off", "reason": ""})  # refused: reason required
    d.refresh_from_db()
    assert d.status == "assigned" and d.assignee == reviewer_a and d.comments.get().body == "Asked the acquirer."
    client.post(action("resolve"), {"resolution": "write_off", "reason": "Below the tolerance."})

    d.refresh_from_db()
    assert (d.status, d.resolution, d.reason, d.resolved_by) == (
        "resolved",
        "write_off",
        "Below the tolerance.",
        reviewer_a,
    )
    actions = list(
        AuditEvent.objects.filter(object_type="recon_upstream.discrepancy", object_id=str(d.pk))
        .order_by("sequence")
        .values_list("action", flat=True)
    )
    assert actions == ["reconciliation.assign", "reconciliation.comment", "reconciliation.resolve"]


def test_upstream_error_via_api(day_a, client_for, acquirer_reviewer):
    d = Discrepancy.objects.get(run=day_a, cls="amount")

    response = client_for(acquirer_reviewer).post(
        f"/api/v1/reconciliation/discrepancies/{d.pk}/resolve/",
        {"resolution": "upstream_error", "reason": "Network corrected it on T+2."},
        content_type="application/json",
    )

    assert response.status_code == 200 and response.json()["status"] == "resolved"
    assert Transaction.objects.get(pk=d.transaction_id).amount == d.ledger_amount  # ledger untouched


def test_adjustment_needs_a_second_person(day_a, reviewer_a, acquirer_reviewer, acquirer):
    d = Discrepancy.objects.get(run=day_a, cls="amount")
    maker = UserFactory(organisation=acquirer, username="acq.maker", roles=["acquirer_reviewer"])

    discrepancy_resolve(actor=maker, discrepancy=d, resolution="adjust_ledger", reason="Network amount is right.")

    d.refresh_from_db()
    request = ApprovalRequest.objects.get(pk=d.approval_request_id)
    assert d.status == "pending_approval" and request.kind == "reconciliation.adjust"
    with pytest.raises(approval_errors.OwnSubmission):
        approval_decide(
            actor=maker,
            request_id=request.pk,
            decision="approve",
            seen_content_hash=request.content_hash,
            otp_verified_at=time.time(),
        )
    assert Transaction.objects.get(pk=d.transaction_id).amount == d.ledger_amount
    approval_decide(
        actor=acquirer_reviewer,
        request_id=request.pk,
        decision="approve",
        seen_content_hash=request.content_hash,
        otp_verified_at=time.time(),
    )

    d.refresh_from_db()
    assert (d.status, d.resolution, d.resolved_by) == ("resolved", "adjust_ledger", acquirer_reviewer)
    assert Transaction.objects.get(pk=d.transaction_id).amount == d.upstream_amount
    adjusted = AuditEvent.objects.get(action="transaction.adjusted")
    assert adjusted.details["after"] == {"amount": d.upstream_amount}


def test_adjusting_an_upstream_only_line_records_it_in_the_ledger(day_a, reviewer_a, acquirer_reviewer):
    d = Discrepancy.objects.get(run=day_a, cls="upstream_only")
    discrepancy_resolve(actor=reviewer_a, discrepancy=d, resolution="adjust_ledger")
    request = ApprovalRequest.objects.get(pk=Discrepancy.objects.get(pk=d.pk).approval_request_id)

    approval_decide(
        actor=acquirer_reviewer,
        request_id=request.pk,
        decision="approve",
        seen_content_hash=request.content_hash,
        otp_verified_at=time.time(),
    )

    txn = Transaction.objects.get(query_id="202603109999999999999")
    assert (txn.source, txn.amount, txn.order_id, txn.status) == ("import", 777, "EXTRA0001", "success")
    assert Discrepancy.objects.get(pk=d.pk).status == "resolved"


def test_rejected_adjustment_returns_the_discrepancy(day_a, reviewer_a, acquirer_reviewer):
    d = Discrepancy.objects.get(run=day_a, cls="amount")
    discrepancy_resolve(actor=reviewer_a, discrepancy=d, resolution="adjust_ledger")
    request = ApprovalRequest.objects.get(pk=Discrepancy.objects.get(pk=d.pk).approval_request_id)

    approval_decide(
        actor=acquirer_reviewer,
        request_id=request.pk,
        decision="reject",
        reason="Check first.",
        seen_content_hash=request.content_hash,
        otp_verified_at=time.time(),
    )

    d.refresh_from_db()
    assert (d.status, d.approval_request_id) == ("open", None)


def test_a_fee_difference_cannot_adjust_the_ledger(day_a, reviewer_a):
    d = Discrepancy.objects.get(run=day_a, cls="amount")
    Discrepancy.objects.filter(pk=d.pk).update(cls="fee")
    d.refresh_from_db()

    with pytest.raises(WorkbenchError):
        discrepancy_resolve(actor=reviewer_a, discrepancy=d, resolution="adjust_ledger")


def test_aged_discrepancies_are_highlighted(day_a, client_for, reviewer_a, settings):
    from datetime import timedelta

    from django.utils import timezone

    settings.RECON_DISCREPANCY_AGE_DAYS = 3
    old = Discrepancy.objects.get(run=day_a, cls="amount")
    Discrepancy.objects.update(created_at=timezone.now() - timedelta(days=2))
    Discrepancy.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=4))
    client = client_for(reviewer_a)

    page = client.get(reverse("reconciliation:upstream_discrepancy_list") + "?aged=true").content.decode()

    assert page.count('data-testid="discrepancy-row"') == 1 and page.count('data-testid="aged"') == 1
