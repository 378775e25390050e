"""The payment's page and the refund form agree: the same deadline (a Beijing date, from one function),
the same end of the window to the second, and the same "still refundable" once refunds and batch
lines in flight hold part of the payment."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from unittest import mock
from zoneinfo import ZoneInfo

import pytest
from django.test import TestCase
from django.urls import reverse

from payments.selectors import refund_deadline as ledger_refund_deadline
from portal.batches.services import batch_upload
from refunds import selectors
from refunds.models import Refund
from refunds.services import refund_request

from .conftest import text_batch, text_file

pytestmark = pytest.mark.django_db

BJ = ZoneInfo("Asia/Shanghai")


def bj(*args) -> datetime:
    return datetime(*args, tzinfo=BJ)


def _testid(body: str, testid: str) -> str:
    match = re.search(rf'data-testid="{testid}">([^<]*)<', body)
    assert match, testid
    return match.group(1).strip()


def _pages(client, payment) -> tuple[str, str]:
    detail = client.get(reverse("payments:detail", args=[payment.pk]))
    form = client.get(reverse("refunds:create", args=[payment.pk]))
    assert (detail.status_code, form.status_code) == (200, 200)
    return detail.content.decode(), form.content.decode()


# --- the deadline ----------------------------------------------------------------------------------


def test_a_payment_at_two_in_the_morning_beijing_has_the_same_deadline_on_both_pages(
    client_for, operator_a, make_payment, time_machine
):
    time_machine.move_to(bj(2026, 3, 10, 15, 0), tick=False)
    # 2026-03-01 02:00 Beijing is 2026-02-28 18:00 UTC: 330 days later is 2027-01-25 in Beijing, the 24th in UTC.
    payment = make_payment(operator_a.organisation, when=bj(2026, 3, 1, 2, 0))

    detail, form = _pages(client_for(operator_a), payment)

    assert _testid(detail, "until") == "2027-01-25"
    assert _testid(form, "until") == "2027-01-25"
    assert selectors.refund_quote(payment).until.isoformat() == "2027-01-25"
    assert selectors.refund_deadline is ledger_refund_deadline  # one function for both pages


def test_at_the_exact_end_of_the_window_both_pages_still_refund_and_one_second_later_neither(
    client_for, operator_a, make_payment, time_machine
):
    paid = bj(2025, 4, 14, 2, 0, 0)
    end = paid + timedelta(days=330)  # 2026-03-10 02:00:00 Beijing
    time_machine.move_to(end, tick=False)
    payment = make_payment(operator_a.organisation, when=paid)
    client = client_for(operator_a)

    detail, form = _pages(client, payment)
    assert (_testid(detail, "until"), _testid(form, "until")) == ("2026-03-10", "2026-03-10")
    assert _testid(detail, "remaining") == "100.00" and 'data-testid="refund-action"' in detail
    assert _testid(form, "refundable") == "100.00" and 'data-testid="not-refundable"' not in form

    time_machine.move_to(end + timedelta(seconds=1), tick=False)
    detail, form = _pages(client, payment)
    assert _testid(detail, "remaining") == "0.00" and 'data-testid="refund-action"' not in detail
    assert "The online refund period has ended" in detail
    assert 'data-testid="not-refundable"' in form and "The online refund period has ended" in form
    assert _testid(detail, "until") == _testid(form, "until") == "2026-03-10"

    refused = client.post(reverse("refunds:create", args=[payment.pk]), {"amount": "1.00", "reason": "late"})
    assert refused.status_code == 400 and Refund.objects.count() == 0


def test_a_refund_requested_at_the_exact_end_of_the_window_is_accepted(
    client_for, operator_a, make_payment, time_machine
):
    paid = bj(2025, 4, 14, 2, 0, 0)
    time_machine.move_to(paid + timedelta(days=330), tick=False)
    payment = make_payment(operator_a.organisation, when=paid)
    client = client_for(operator_a)

    response = client.post(reverse("refunds:create", args=[payment.pk]), {"amount": "1.00", "reason": "in time"})

    assert response.status_code == 302
    assert Refund.objects.get().amount == 100


# --- what refunds in flight hold --------------------------------------------------------------------


def test_batch_lines_in_flight_hide_the_refund_action_and_are_listed(client_for, operator_a, make_payment):
    payment = make_payment(operator_a.organisation, amount=10000)
    with TestCase.captureOnCommitCallbacks(execute=True):
        batch = batch_upload(
            actor=operator_a,
            kind="refund",
            uploaded_file=text_file(text_batch([("RFH000000001", 10000, payment.query_id, "x")])),
        )
    batch.refresh_from_db()
    assert batch.status == "validated"

    client = client_for(operator_a)
    detail, form = _pages(client, payment)

    assert (_testid(detail, "held"), _testid(detail, "remaining")) == ("100.00", "0.00")
    assert 'data-testid="refund-action"' not in detail
    assert _testid(form, "refundable") == "0.00" and 'data-testid="not-refundable"' in form
    [item] = client.get(reverse("payments:detail", args=[payment.pk]), HTTP_ACCEPT_LANGUAGE="en").context["in_flight"]
    assert (item.label, item.order_id, item.amount, item.maker) == (
        "Batch refund line 3",
        "RFH000000001",
        10000,
        operator_a.get_username(),
    )
    assert item.url == reverse("refunds:batch_detail", args=[batch.pk])


def test_a_refund_that_reached_the_ledger_is_counted_once(client_for, operator_a, make_payment):
    payment = make_payment(operator_a.organisation, amount=10000)
    with mock.patch("refunds.tasks.send_refund.delay"):
        pending = refund_request(actor=operator_a, original=payment, amount=4000, reason="x")
    detail, _ = _pages(client_for(operator_a), payment)
    assert (_testid(detail, "held"), _testid(detail, "remaining")) == ("40.00", "60.00")

    # The refund succeeded and the ledger recorded it: refunded_amount holds it now, the hook no longer.
    Refund.objects.filter(pk=pending.pk).update(status="succeeded")
    make_payment(operator_a.organisation, amount=4000, txn_type="04", order_id=pending.order_id, orig=payment)
    type(payment).objects.filter(pk=payment.pk).update(refunded_amount=4000)

    detail, form = _pages(client_for(operator_a), payment)
    assert (_testid(detail, "refunded"), _testid(detail, "held"), _testid(detail, "remaining")) == (
        "40.00",
        "0.00",
        "60.00",
    )
    assert _testid(form, "refundable") == "60.00"
    assert 'data-testid="refunds-in-flight"' not in detail
