"""Settlement-day close: totals, fees, idempotence, refusal of different results, catch-up, the command."""

from datetime import date
from unittest import mock

import pytest
from django.core.management import CommandError, call_command

from portal.audit.models import AuditEvent
from reconciliation.models import AcquirerSettlement, MerchantSettlement, SettlementDay
from reconciliation.services import SettlementCloseError, settlement_close_day, settlement_close_due

from .conftest import bj

DAY = date(2026, 3, 10)  # a Tuesday; T+1 = Wednesday 11 March
AFTER = bj(2026, 3, 10, 23, 30)


@pytest.fixture
def ledger_day(merchant_a, merchant_b, make_txn, rates):
    """Merchant A: four payments (one voided), a refund of an older payment; merchant B: one payment."""
    make_txn(merchant_a, amount=10_000, card_type="01")  # fee 38
    make_txn(merchant_a, amount=250_000, card_type="02")  # fee 1 500
    make_txn(merchant_a, amount=1_000_000, card_type="01")  # 3 800 capped at 2 000
    voided = make_txn(merchant_a, amount=5_000, card_type="01")  # fee 19, returned by the void
    make_txn(merchant_a, txn_type="31", amount=5_000, orig=voided, orig_query_id=voided.query_id)
    older = make_txn(merchant_a, amount=20_000, card_type="02", txn_time=bj(2026, 3, 1, 10))
    make_txn(merchant_a, txn_type="04", amount=3_000, card_type="02", orig=older, orig_query_id=older.query_id)
    make_txn(merchant_a, amount=777, status="failed")  # not settled
    make_txn(merchant_a, amount=999, txn_time=bj(2026, 3, 10, 23, 0, 0))  # next settlement day
    make_txn(merchant_b, amount=8_888, card_type="")  # "other" card: 1% = 88.88 → 89
    return DAY


def test_close_computes_merchant_and_acquirer_totals(ledger_day, merchant_a, merchant_b, acquirer):
    # when
    closed = settlement_close_day(actor=None, day=ledger_day, now=AFTER)

    # then
    assert closed.day == DAY and closed.merchant_count == 2 and len(closed.content_hash) == 64
    a = MerchantSettlement.objects.get(merchant=merchant_a, day=DAY)
    assert (a.payment_count, a.payment_amount) == (4, 1_265_000)
    assert (a.void_count, a.void_amount, a.refund_count, a.refund_amount) == (1, 5_000, 1, 3_000)
    assert a.fee == 38 + 1_500 + 2_000 + 19 - 19
    assert a.net == 1_265_000 - 5_000 - 3_000 - 3_538
    assert a.settle_on == date(2026, 3, 11)
    b = MerchantSettlement.objects.get(merchant=merchant_b, day=DAY)
    assert (b.payment_count, b.fee, b.net) == (1, 89, 8_799)
    acq = AcquirerSettlement.objects.get(acquirer=acquirer, day=DAY)
    assert (acq.merchant_count, acq.payment_amount, acq.fee, acq.net) == (1, 1_265_000, 3_538, a.net)
    assert AcquirerSettlement.objects.get(acquirer=merchant_b.acquirer, day=DAY).net == 8_799
    event = AuditEvent.objects.get(action="reconciliation.settlement_close")
    assert event.outcome == "success" and event.details["day"] == "2026-03-10"


def test_proportional_fee_return_on_refund(ledger_day, merchant_a, settings):
    # given: a refund of 3 000 of a 20 000 credit payment whose fee was 120
    settings.RECON_REFUND_FEE_RETURN = "proportional"

    # when
    settlement_close_day(actor=None, day=ledger_day, now=AFTER)

    # then: 120 × 3 000 / 20 000 = 18 fen come back
    a = MerchantSettlement.objects.get(merchant=merchant_a, day=DAY)
    assert a.fee == 3_538 - 18
    assert a.net == 1_265_000 - 5_000 - 3_000 - 3_520


def test_close_twice_is_idempotent(ledger_day):
    # given
    first = settlement_close_day(actor=None, day=ledger_day, now=AFTER)

    # when
    second = settlement_close_day(actor=None, day=ledger_day, now=AFTER)

    # then
    assert second.pk == first.pk and second.content_hash == first.content_hash
    assert SettlementDay.objects.count() == 1
    assert MerchantSettlement.objects.count() == 2
    assert AuditEvent.objects.filter(action="reconciliation.settlement_close").count() == 1


def test_close_with_different_results_is_refused_and_audited(ledger_day, merchant_a, make_txn):
    # given: the day is closed, then the ledger of that day changes
    first = settlement_close_day(actor=None, day=ledger_day, now=AFTER)
    net_before = MerchantSettlement.objects.get(merchant=merchant_a).net
    make_txn(merchant_a, amount=1_234)

    # when
    with pytest.raises(SettlementCloseError) as info:
        settlement_close_day(actor=None, day=ledger_day, now=AFTER)

    # then
    assert info.value.code == "conflict"
    assert "already closed with different results" in info.value.message
    assert SettlementDay.objects.get().content_hash == first.content_hash
    assert MerchantSettlement.objects.get(merchant=merchant_a).net == net_before
    refused = AuditEvent.objects.get(action="reconciliation.settlement_close", outcome="failure")
    assert refused.details["reason"] == "different_results"
    assert refused.details["closed_hash"] == first.content_hash


@pytest.mark.parametrize(
    ("now", "allowed"),
    [
        (bj(2026, 3, 10, 22, 59, 59), False),  # day T is still open
        (bj(2026, 3, 10, 23, 0, 0), True),  # cut-off reached
        (bj(2026, 3, 11, 0, 0, 0), True),
    ],
)
def test_only_a_finished_day_closes(db, now, allowed):
    if allowed:
        assert settlement_close_day(actor=None, day=DAY, now=now).day == DAY
    else:
        with pytest.raises(SettlementCloseError) as info:
            settlement_close_day(actor=None, day=DAY, now=now)
        assert info.value.code == "not_finished"
        assert "not finished yet" in info.value.message
        assert not SettlementDay.objects.exists()


def test_catch_up_closes_every_missed_day(merchant_a, make_txn, rates):
    # given: transactions on 8 and 10 March, nothing closed
    make_txn(merchant_a, txn_time=bj(2026, 3, 8, 9))
    make_txn(merchant_a, txn_time=bj(2026, 3, 10, 9))

    # when: the 23:00 job runs late on the 10th
    closed = settlement_close_due(now=bj(2026, 3, 10, 23, 5))

    # then: 8, 9 (empty) and 10 are closed
    assert [d.day for d in closed] == [date(2026, 3, 8), date(2026, 3, 9), date(2026, 3, 10)]
    assert SettlementDay.objects.get(day=date(2026, 3, 9)).merchant_count == 0
    # and running again does nothing; a later run closes only the newly finished day
    assert settlement_close_due(now=bj(2026, 3, 10, 23, 30)) == []
    assert [d.day for d in settlement_close_due(now=bj(2026, 3, 12, 1, 0))] == [date(2026, 3, 11)]


def test_close_enqueues_file_production_on_commit(ledger_day, django_capture_on_commit_callbacks):
    with mock.patch("reconciliation.tasks.produce_day_files_task.delay") as delay:
        with django_capture_on_commit_callbacks(execute=True):
            settlement_close_day(actor=None, day=ledger_day, now=AFTER)
    delay.assert_called_once_with("2026-03-10")


def test_command_closes_a_day(ledger_day, capsys):
    call_command("close_settlement_day", "--date", "2026-03-10")
    assert "settlement day 2026-03-10 closed: merchants=2" in capsys.readouterr().out
    assert SettlementDay.objects.filter(day=DAY).exists()


@pytest.mark.parametrize(
    ("value", "message"),
    [("2026-13-01", "Invalid date '2026-13-01'"), ("10/03/2026", "Invalid date"), ("2999-01-01", "not finished yet")],
)
def test_command_refuses_bad_or_future_dates(db, value, message):
    with pytest.raises(CommandError, match=message):
        call_command("close_settlement_day", "--date", value)
    assert not SettlementDay.objects.exists()


def test_beat_runs_the_close_at_23_beijing(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["reconciliation-close-day"]
    assert entry["task"] == "reconciliation.close_due_settlement_days"
    assert settings.CELERY_TIMEZONE == "UTC"
    assert entry["schedule"].hour == {15} and entry["schedule"].minute == {0}
