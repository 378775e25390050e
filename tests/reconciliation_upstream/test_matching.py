"""Matching against the ledger: every discrepancy class, exactly the alterations made."""

from __future__ import annotations

import pytest

from payments.models import Transaction
from reconciliation.upstream.choices import RunSource, RunStatus
from reconciliation.upstream.importer import reconciliation_import
from reconciliation.upstream.models import Discrepancy

from .conftest import AFTER_CLOSE, record_of, upstream_zip

FEE_PROVIDER = "tests.reconciliation_upstream.conftest.test_fee_provider"


def _run(merchant, records):
    name, data = upstream_zip(merchant.code, records)
    run = reconciliation_import(actor=None, source=RunSource.COMMAND, data=data, file_name=name, now=AFTER_CLOSE)
    assert run.status == RunStatus.COMPLETED, run.error
    return run


def test_an_unaltered_day_matches_with_zero_discrepancies(merchant_a, ledger_day, settings):
    settings.RECON_LEDGER_FEE_PROVIDER = FEE_PROVIDER
    txns = ledger_day(merchant_a, 5)

    run = _run(merchant_a, [record_of(t) for t in txns])

    assert Discrepancy.objects.count() == 0
    assert run.class_totals["matched"] == {"count": 5, "amount": sum(t.amount for t in txns)}


def test_every_altered_line_gives_exactly_its_discrepancy(merchant_a, merchant_b, ledger_day, settings):
    settings.RECON_LEDGER_FEE_PROVIDER = FEE_PROVIDER
    txns = ledger_day(merchant_a, 7)
    ledger_day(merchant_b, 2)  # another merchant's day is not in A's file and must not show up
    dropped, changed_amount, changed_status, changed_fee = txns[1], txns[2], txns[3], txns[4]
    Transaction.objects.filter(pk=changed_status.pk).update(status="pending")
    extra = record_of(txns[0], query_id="202603109999999999999", order_id="EXTRA0001", amount=777)
    records = [
        record_of(txns[0]),
        record_of(changed_amount, amount=changed_amount.amount + 100),
        record_of(changed_status),
        record_of(changed_fee, merchant_fee=-1),
        record_of(txns[5]),
        # Matched by order id + transmission time when the queryId is missing.
        record_of(txns[6], query_id=""),
        extra,
    ]

    run = _run(merchant_a, records)

    found = sorted(Discrepancy.objects.values_list("cls", "query_id", "order_id"))
    assert found == sorted(
        [
            ("ledger_only", dropped.query_id, dropped.order_id),
            ("upstream_only", extra.query_id, "EXTRA0001"),
            ("amount", changed_amount.query_id, changed_amount.order_id),
            ("status", changed_status.query_id, changed_status.order_id),
            ("fee", changed_fee.query_id, changed_fee.order_id),
        ]
    )
    amount = Discrepancy.objects.get(cls="amount")
    assert (amount.ledger_amount, amount.upstream_amount, amount.transaction_id) == (
        changed_amount.amount,
        changed_amount.amount + 100,
        changed_amount.pk,
    )
    fee = Discrepancy.objects.get(cls="fee")
    assert (fee.upstream_fee, fee.ledger_fee) == (-1, -((changed_fee.amount * 6 + 500) // 1000))
    assert Discrepancy.objects.get(cls="status").ledger_status == "pending"
    assert Discrepancy.objects.get(cls="upstream_only").transaction_id is None
    totals = run.class_totals
    assert {k: v["count"] for k, v in totals.items()} == {
        "matched": 3,
        "upstream_only": 1,
        "ledger_only": 1,
        "amount": 1,
        "status": 1,
        "fee": 1,
    }
    assert totals["upstream_only"]["amount"] == 777
    assert totals["ledger_only"]["amount"] == dropped.amount


def test_a_line_differing_twice_leaves_the_matched_totals_once(merchant_a, ledger_day, settings):
    # given a day where one line differs in amount and fee, another only in status, and one is upstream only
    settings.RECON_LEDGER_FEE_PROVIDER = FEE_PROVIDER
    txns = ledger_day(merchant_a, 5)
    Transaction.objects.filter(pk=txns[2].pk).update(status="pending")
    extra = record_of(txns[0], query_id="202603109999999999998", order_id="EXTRA0002", amount=555)
    records = [
        record_of(txns[0]),
        record_of(txns[1], amount=txns[1].amount + 100, merchant_fee=-1),
        record_of(txns[2]),
        record_of(txns[3]),
        record_of(txns[4]),
        extra,
    ]

    run = _run(merchant_a, records)

    # then the twice-different line leaves the matched class once, with its upstream amount
    assert sorted(Discrepancy.objects.values_list("cls", flat=True)) == ["amount", "fee", "status", "upstream_only"]
    assert run.class_totals["matched"] == {"count": 3, "amount": txns[0].amount + txns[3].amount + txns[4].amount}
    assert run.class_totals["matched"]["count"] + 2 + 1 == run.record_count


def test_without_a_ledger_fee_fees_are_not_compared(merchant_a, ledger_day, settings):
    settings.RECON_LEDGER_FEE_PROVIDER = ""
    txns = ledger_day(merchant_a, 2)

    _run(merchant_a, [record_of(txns[0], merchant_fee=-1), record_of(txns[1])])

    assert Discrepancy.objects.count() == 0


@pytest.mark.parametrize("status", ["failed", "pending"])
def test_a_ledger_row_not_successful_is_not_short(merchant_a, ledger_day, status):
    txns = ledger_day(merchant_a, 2)
    Transaction.objects.filter(pk=txns[1].pk).update(status=status)

    _run(merchant_a, [record_of(txns[0])])

    assert Discrepancy.objects.count() == 0


def test_a_line_of_another_ledger_day_is_linked_and_compared(merchant_a, ledger_day, settings):
    """The network may settle a payment on another day than our cut-off gave it: the line still finds
    its ledger row by queryId (one outside the day's own read) and is compared like any other."""
    from datetime import datetime, timedelta

    from .conftest import BJ, DAY

    settings.RECON_LEDGER_FEE_PROVIDER = ""
    txns = ledger_day(merchant_a, 2)
    earlier = datetime(2026, 3, 9, 10, 0, tzinfo=BJ)
    (other_day,) = ledger_day(merchant_a, 1, txn_time=earlier, settle_date=DAY - timedelta(days=1))
    (other_day_changed,) = ledger_day(merchant_a, 1, txn_time=earlier, settle_date=DAY - timedelta(days=1))

    run = _run(
        merchant_a,
        [
            record_of(txns[0]),
            record_of(txns[1]),
            record_of(other_day),
            record_of(other_day_changed, amount=other_day_changed.amount + 1),
        ],
    )

    found = list(Discrepancy.objects.values_list("cls", "transaction_id"))
    assert found == [("amount", other_day_changed.pk)]
    assert run.class_totals["matched"]["count"] == 3
    assert "ledger_only" not in run.class_totals or run.class_totals["ledger_only"]["count"] == 0
