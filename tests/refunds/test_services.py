"""Single refunds and voids: the request rules, four-eyes, the kind, the cap, sending and outcome."""

from __future__ import annotations

from datetime import datetime, timedelta
from unittest import mock

import pytest
from django.core.exceptions import PermissionDenied
from django.utils import timezone

from payments.models import MerchantProfile
from payments.settlement import business_tz
from portal.approvals import errors as approval_errors
from portal.approvals.models import ApprovalRequest
from portal.audit.models import AuditEvent
from refunds import gateway
from refunds.errors import RefundError
from refunds.models import Refund
from refunds.services import refund_cancel, refund_confirm, refund_request, refund_send
from tests.factories import UserFactory

from .conftest import decide

pytestmark = pytest.mark.django_db


@pytest.fixture
def no_send():
    """The send job does nothing (the gateway is exercised in test_live)."""
    with mock.patch("refunds.tasks.send_refund.delay") as delay:
        yield delay


def test_request_opens_a_refund_waiting_for_review(operator_a, make_payment, no_send):
    payment = make_payment(operator_a.organisation, amount=10000)

    refund = refund_request(actor=operator_a, original=payment, amount=2500, reason="damaged")

    assert (refund.kind, refund.amount, refund.status, refund.maker) == ("refund", 2500, "pending_review", operator_a)
    assert 8 <= len(refund.order_id) <= 32 and refund.order_id.isalnum()
    approval = ApprovalRequest.objects.get(pk=refund.approval_id)
    assert (approval.kind, approval.object_type, approval.object_id, approval.amount) == (
        "refund.single",
        "refunds.refund",
        str(refund.pk),
        2500,
    )
    assert AuditEvent.objects.filter(action="refund.request", object_id=str(refund.pk)).count() == 1


def test_reviewer_approves_and_the_send_is_enqueued_once(
    operator_a, reviewer_a, make_payment, no_send, django_capture_on_commit_callbacks
):
    refund = refund_request(actor=operator_a, original=make_payment(operator_a.organisation), amount=100, reason="x")

    with django_capture_on_commit_callbacks(execute=True):
        decide(reviewer_a, refund)

    refund.refresh_from_db()
    assert refund.status == "approved"
    no_send.assert_called_once_with(refund.pk)


@pytest.mark.parametrize("role", ["merchant_operator", "merchant_reviewer", "superuser_reviewer"])
def test_nobody_approves_their_own_refund(role, merchant_a, make_payment, no_send):
    roles = ["merchant_operator", "merchant_reviewer"] if role != "merchant_operator" else ["merchant_operator"]
    maker = UserFactory(organisation=merchant_a, roles=roles, is_superuser=role == "superuser_reviewer")
    refund = refund_request(actor=maker, original=make_payment(merchant_a), amount=100, reason="x")

    with pytest.raises(approval_errors.OwnSubmission):
        decide(maker, refund)

    refund.refresh_from_db()
    assert refund.status == "pending_review"
    no_send.assert_not_called()


def test_reject_needs_a_reason_and_is_final(operator_a, reviewer_a, make_payment, no_send):
    refund = refund_request(actor=operator_a, original=make_payment(operator_a.organisation), amount=100, reason="x")

    with pytest.raises(approval_errors.ReasonRequired):
        decide(reviewer_a, refund, "reject")
    decide(reviewer_a, refund, "reject", reason="not agreed")

    refund.refresh_from_db()
    assert refund.status == "rejected"
    with pytest.raises(approval_errors.AlreadyDecided):
        decide(reviewer_a, refund)


def test_approve_after_edit_is_refused_and_voids_the_request(operator_a, reviewer_a, make_payment, no_send):
    refund = refund_request(actor=operator_a, original=make_payment(operator_a.organisation), amount=100, reason="x")
    Refund.objects.filter(pk=refund.pk).update(amount=9000)  # changed behind the reviewer's back

    with pytest.raises(approval_errors.ContentChanged):
        decide(reviewer_a, refund)

    refund.refresh_from_db()
    assert refund.status == "cancelled"
    assert ApprovalRequest.objects.get(pk=refund.approval_id).status == "voided"
    no_send.assert_not_called()


def test_approval_without_fresh_second_factor_is_refused(operator_a, reviewer_a, make_payment, no_send):
    refund = refund_request(actor=operator_a, original=make_payment(operator_a.organisation), amount=100, reason="x")

    with pytest.raises(approval_errors.StepUpRequired):
        decide(reviewer_a, refund, fresh=False)

    refund.refresh_from_db()
    assert refund.status == "pending_review"


def test_pending_refund_expires_and_releases_its_amount(operator_a, reviewer_a, make_payment, no_send, time_machine):
    from portal.approvals.services import approvals_expire_due

    payment = make_payment(operator_a.organisation, amount=10000)
    refund = refund_request(actor=operator_a, original=payment, amount=10000, reason="x")
    with pytest.raises(RefundError) as held:
        refund_request(actor=operator_a, original=payment, amount=1, reason="x")
    assert held.value.code == "nothing_refundable"

    time_machine.move_to(timezone.now() + timedelta(hours=73))
    assert approvals_expire_due() == 1

    refund.refresh_from_db()
    assert refund.status == "expired"
    again = refund_request(actor=operator_a, original=payment, amount=10000, reason="again")
    assert again.status == "pending_review"


def test_amount_rules_with_exact_messages(operator_a, make_payment, no_send):
    payment = make_payment(operator_a.organisation, amount=10000, refunded_amount=3000)
    refund_request(actor=operator_a, original=payment, amount=5000, reason="first")

    with pytest.raises(RefundError) as zero:
        refund_request(actor=operator_a, original=payment, amount=0, reason="x")
    with pytest.raises(RefundError) as over:
        refund_request(actor=operator_a, original=payment, amount=2001, reason="x")
    with pytest.raises(RefundError) as no_reason:
        refund_request(actor=operator_a, original=payment, amount=1, reason="  ")

    assert zero.value.code == "amount_not_positive"
    assert (over.value.code, over.value.message) == (
        "amount_exceeds",
        "The amount (20.01 yuan) is more than what can still be refunded of this payment: 20.00 yuan.",
    )
    assert no_reason.value.code == "reason_required"
    assert refund_request(actor=operator_a, original=payment, amount=2000, reason="rest").amount == 2000


def test_only_successful_payments(operator_a, make_payment, no_send):
    failed = make_payment(operator_a.organisation, status="failed")
    refund_row = make_payment(operator_a.organisation, txn_type="04")

    with pytest.raises(RefundError) as not_ok:
        refund_request(actor=operator_a, original=failed, amount=1, reason="x")
    with pytest.raises(RefundError) as not_payment:
        refund_request(actor=operator_a, original=refund_row, amount=1, reason="x")

    assert (not_ok.value.code, not_payment.value.code) == ("not_successful", "not_a_payment")
    assert Refund.objects.count() == 0


def test_refund_window_is_330_days_or_the_merchants_setting(operator_a, make_payment, no_send, time_machine):
    now = timezone.now()
    time_machine.move_to(now)
    inside = make_payment(operator_a.organisation, when=now - timedelta(days=330) + timedelta(minutes=1))
    outside = make_payment(operator_a.organisation, when=now - timedelta(days=330, minutes=1))

    assert refund_request(actor=operator_a, original=inside, amount=1, reason="x").status == "pending_review"
    with pytest.raises(RefundError) as late:
        refund_request(actor=operator_a, original=outside, amount=1, reason="x")
    assert late.value.code == "window_expired"
    assert "more than 330 days ago" in late.value.message

    MerchantProfile.objects.create(merchant=operator_a.organisation, refund_window_days=10)
    recent = make_payment(operator_a.organisation, when=now - timedelta(days=11))
    with pytest.raises(RefundError) as short:
        refund_request(actor=operator_a, original=recent, amount=1, reason="x")
    assert short.value.params["days"] == 10


def test_other_merchants_payment_is_not_found_and_leaves_nothing(operator_a, admin_b, make_payment, no_send):
    payment = make_payment(admin_b.organisation)

    with pytest.raises(RefundError) as missing:
        refund_request(actor=operator_a, original=payment, amount=1, reason="x")

    assert (missing.value.code, missing.value.status) == ("not_found", 404)
    assert Refund.objects.count() == 0
    assert not AuditEvent.objects.filter(action="refund.request").exists()


def test_reviewer_without_create_permission_is_refused(reviewer_a, make_payment, no_send):
    with pytest.raises(PermissionDenied):
        refund_request(actor=reviewer_a, original=make_payment(reviewer_a.organisation), amount=1, reason="x")
    assert Refund.objects.count() == 0


def _bj(*args):
    return datetime(*args, tzinfo=business_tz())


@pytest.mark.parametrize(
    ("paid", "now", "amount", "kind"),
    [
        (_bj(2026, 3, 10, 12, 0), _bj(2026, 3, 10, 22, 59, 59), 10000, "void"),
        (_bj(2026, 3, 10, 12, 0), _bj(2026, 3, 10, 23, 0, 0), 10000, "refund"),
        (_bj(2026, 3, 10, 23, 0), _bj(2026, 3, 11, 22, 59), 10000, "void"),
        (_bj(2026, 3, 10, 22, 59), _bj(2026, 3, 10, 23, 1), 10000, "refund"),
        (_bj(2026, 3, 10, 12, 0), _bj(2026, 3, 10, 13, 0), 9999, "refund"),
    ],
)
def test_void_or_refund_around_the_23h_cut_off(
    paid, now, amount, kind, operator_a, make_payment, no_send, time_machine
):
    time_machine.move_to(now, tick=False)
    payment = make_payment(operator_a.organisation, amount=10000, when=paid)

    refund = refund_request(actor=operator_a, original=payment, amount=amount, reason="x")

    assert refund.kind == kind


def test_maker_cancels_a_pending_refund(operator_a, make_payment, no_send):
    refund = refund_request(actor=operator_a, original=make_payment(operator_a.organisation), amount=1, reason="x")

    refund_cancel(actor=operator_a, refund=refund)

    refund.refresh_from_db()
    assert refund.status == "cancelled"
    assert ApprovalRequest.objects.get(pk=refund.approval_id).status == "cancelled"


def _approved(operator, reviewer, payment, amount=100):
    with mock.patch("refunds.tasks.send_refund.delay"):
        refund = refund_request(actor=operator, original=payment, amount=amount, reason="x")
        decide(reviewer, refund)
    refund.refresh_from_db()
    return refund


def test_send_accepted_then_confirmed_by_query_records_the_ledger_once(operator_a, reviewer_a, make_payment):
    payment = make_payment(operator_a.organisation, amount=10000)
    refund = _approved(operator_a, reviewer_a, payment, 2500)
    accepted = gateway.Answer(gateway.ACCEPTED, {"respCode": "00", "respMsg": "ok", "queryId": "Q1"})
    final = gateway.Answer(
        gateway.SUCCEEDED,
        {"respCode": "00", "origRespCode": "00", "origRespMsg": "成功", "queryId": "Q1", "settleDate": "0310"},
    )

    with (
        mock.patch.object(gateway, "send", return_value=accepted) as send,
        mock.patch.object(gateway, "query", return_value=final),
        mock.patch("refunds.tasks.confirm_refund.apply_async"),
    ):
        assert refund_send(refund_id=refund.pk) == "sent"
        assert refund_send(refund_id=refund.pk) == "sent"  # a duplicated task sends nothing
        assert refund_confirm(refund_id=refund.pk) == "succeeded"
        assert refund_confirm(refund_id=refund.pk) == "succeeded"

    assert send.call_count == 1
    refund.refresh_from_db()
    payment.refresh_from_db()
    assert (refund.status, refund.ledger_txn.order_id, refund.ledger_txn.txn_type) == (
        "succeeded",
        refund.order_id,
        "04",
    )
    assert payment.refunded_amount == 2500
    assert list(refund.status_changes.values_list("to_status", flat=True)) == [
        "pending_review",
        "approved",
        "sending",
        "sent",
        "succeeded",
    ]


def test_refused_send_fails_and_releases_the_amount(operator_a, reviewer_a, make_payment):
    payment = make_payment(operator_a.organisation, amount=10000)
    refund = _approved(operator_a, reviewer_a, payment, 10000)
    refused = gateway.Answer(gateway.FAILED, {"respCode": "36", "respMsg": "与原交易信息不符"})

    with mock.patch.object(gateway, "send", return_value=refused):
        assert refund_send(refund_id=refund.pk) == "failed"

    refund.refresh_from_db()
    assert (refund.status, refund.resp_code) == ("failed", "36")
    with mock.patch("refunds.tasks.send_refund.delay"):
        assert refund_request(actor=operator_a, original=payment, amount=10000, reason="again").amount == 10000


def test_a_refund_left_sending_is_queried_before_any_resend(operator_a, reviewer_a, make_payment):
    refund = _approved(operator_a, reviewer_a, make_payment(operator_a.organisation), 100)
    Refund.objects.filter(pk=refund.pk).update(status="sending", txn_time=timezone.now().replace(microsecond=0))
    final = gateway.Answer(gateway.SUCCEEDED, {"respCode": "00", "origRespCode": "00", "queryId": "Q9"})

    with mock.patch.object(gateway, "send") as send, mock.patch.object(gateway, "query", return_value=final):
        assert refund_send(refund_id=refund.pk) == "succeeded"

    send.assert_not_called()


def test_reconcile_links_a_notified_ledger_row_to_a_sent_refund(operator_a, reviewer_a, make_payment, time_machine):
    from payments.services import ledger_record
    from refunds.services import refunds_reconcile

    payment = make_payment(operator_a.organisation, amount=10000)
    refund = _approved(operator_a, reviewer_a, payment, 700)
    sent_at = timezone.now().replace(microsecond=0)
    Refund.objects.filter(pk=refund.pk).update(status="sent", txn_time=sent_at)
    ledger_record(  # what the notification receiver records
        merchant=operator_a.organisation,
        order_id=refund.order_id,
        txn_time=sent_at,
        txn_type="04",
        amount=700,
        status="success",
        query_id="202603101200000000777",
        orig_query_id=payment.query_id,
        resp_code="00",
    )

    time_machine.move_to(timezone.now() + timedelta(minutes=5))
    with mock.patch.object(gateway, "query") as query:
        assert refunds_reconcile() == 1

    query.assert_not_called()
    refund.refresh_from_db()
    payment.refresh_from_db()
    assert (refund.status, refund.query_id, payment.refunded_amount) == ("succeeded", "202603101200000000777", 700)
