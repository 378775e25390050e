from datetime import date

import pytest

from payments.cards import card_hash
from payments.models import Transaction
from payments.services import LedgerConflictError, ledger_record
from portal.audit.models import AuditEvent

from .conftest import PAN_A, bj

pytestmark = pytest.mark.django_db


def _record(merchant, **overrides):
    fields = {
        "merchant": merchant,
        "order_id": "ORD20260310001",
        "txn_time": bj(2026, 3, 10, 23, 0, 0),
        "txn_type": "01",
        "amount": 12345,
        "status": "success",
        "query_id": "202603102300000000001",
        "resp_code": "00",
        "card_number": PAN_A,
        "source": "notification",
    }
    fields.update(overrides)
    return ledger_record(**fields)


def test_first_notification_creates_the_row_with_mask_hash_and_settle_date(merchant_a):
    txn, created = _record(merchant_a)
    assert created is True
    txn.refresh_from_db()
    assert txn.acquirer_id == merchant_a.acquirer_id
    assert txn.settle_date == date(2026, 3, 11)
    assert txn.card_masked == "622202*********0128"
    assert txn.card_hash == card_hash(PAN_A)
    assert AuditEvent.objects.filter(action="transaction.recorded", object_id=str(txn.pk)).count() == 1


def test_full_card_number_is_stored_nowhere(merchant_a):
    txn, _ = _record(merchant_a)
    row = Transaction.objects.filter(pk=txn.pk).values().get()
    assert not any(PAN_A in str(value) for value in row.values())
    assert not any(PAN_A in str(e.details) for e in AuditEvent.objects.all())


def test_repeated_notification_changes_nothing(merchant_a):
    txn, _ = _record(merchant_a)
    before = Transaction.objects.filter(pk=txn.pk).values().get()
    events = AuditEvent.objects.count()
    again, created = _record(merchant_a)
    assert created is False and again.pk == txn.pk
    assert Transaction.objects.count() == 1
    assert Transaction.objects.filter(pk=txn.pk).values().get() == before
    assert AuditEvent.objects.count() == events


def test_pending_moves_forward_to_success_once(merchant_a):
    txn, _ = _record(merchant_a, status="pending", resp_code="05", query_id=None)
    assert txn.query_id is None
    moved, created = _record(merchant_a, status="success", resp_code="00")
    assert created is False and moved.pk == txn.pk
    moved.refresh_from_db()
    assert (moved.status, moved.resp_code, moved.query_id) == ("success", "00", "202603102300000000001")
    assert AuditEvent.objects.filter(action="transaction.status_changed").count() == 1


def test_status_never_moves_backwards(merchant_a):
    txn, _ = _record(merchant_a, status="success")
    _record(merchant_a, status="pending", resp_code="05")
    _record(merchant_a, status="failed", resp_code="61")
    txn.refresh_from_db()
    assert (txn.status, txn.resp_code) == ("success", "00")
    assert AuditEvent.objects.filter(action="transaction.status_changed").count() == 0


def test_same_query_id_with_another_amount_is_a_conflict_and_writes_nothing(merchant_a):
    _record(merchant_a)
    with pytest.raises(LedgerConflictError):
        _record(merchant_a, amount=99999)
    assert Transaction.objects.get().amount == 12345


def test_successful_refunds_accumulate_on_the_original_once(merchant_a):
    original, _ = _record(merchant_a)
    refund_fields = {"txn_type": "04", "orig_query_id": original.query_id, "card_number": ""}
    refund, created = _record(
        merchant_a,
        order_id="REF0001",
        query_id="202603120000000000002",
        amount=2345,
        txn_time=bj(2026, 3, 12, 10, 0, 0),
        **refund_fields,
    )
    _record(
        merchant_a,
        order_id="REF0001",
        query_id="202603120000000000002",
        amount=2345,
        txn_time=bj(2026, 3, 12, 10, 0, 0),
        **refund_fields,
    )
    original.refresh_from_db()
    assert created is True and refund.orig_id == original.pk
    assert original.refunded_amount == 2345


def test_refund_beyond_the_original_is_refused(merchant_a):
    original, _ = _record(merchant_a)
    with pytest.raises(LedgerConflictError):
        _record(
            merchant_a,
            order_id="REF0002",
            query_id="202603120000000000003",
            amount=12346,
            txn_type="04",
            orig_query_id=original.query_id,
            txn_time=bj(2026, 3, 12, 10, 0, 0),
        )
    original.refresh_from_db()
    assert original.refunded_amount == 0
    assert not Transaction.objects.filter(order_id="REF0002").exists()


def test_pending_refund_counts_when_it_succeeds(merchant_a):
    original, _ = _record(merchant_a)
    common = {
        "order_id": "REF0003",
        "query_id": "202603120000000000004",
        "amount": 1000,
        "txn_type": "04",
        "orig_query_id": original.query_id,
        "txn_time": bj(2026, 3, 12, 10, 0, 0),
    }
    _record(merchant_a, status="pending", **common)
    original.refresh_from_db()
    assert original.refunded_amount == 0
    _record(merchant_a, status="success", **common)
    original.refresh_from_db()
    assert original.refunded_amount == 1000


def test_naive_time_and_non_positive_amount_are_refused(merchant_a):
    from datetime import datetime

    with pytest.raises(ValueError):
        _record(merchant_a, txn_time=datetime(2026, 3, 10, 12, 0))
    with pytest.raises(ValueError):
        _record(merchant_a, amount=0)
    assert Transaction.objects.count() == 0
