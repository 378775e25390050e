"""Fixtures of upstream reconciliation: a ledger day and the upstream file built from it with the codec."""

from __future__ import annotations

import itertools
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from payments.gateway.acp.reconfiles import ZMRecord, build_zip, write_zm
from payments.models import Transaction
from payments.settlement import settlement_date_for

BJ = ZoneInfo("Asia/Shanghai")
DAY = date(2026, 3, 10)
AFTER_CLOSE = datetime(2026, 3, 11, 10, 0, tzinfo=BJ)
_seq = itertools.count(1)


def fee_of(amount: int) -> int:
    """The test fee rule: 0.6 %, rounded half up, debited (negative)."""
    return -((amount * 6 + 500) // 1000)


def test_fee_provider(merchant, settle_date):
    """A RECON_LEDGER_FEE_PROVIDER for the tests: the 0.6 % rule over the merchant day."""
    rows = Transaction.objects.filter(merchant=merchant, settle_date=settle_date)
    return {txn.pk: fee_of(txn.amount) for txn in rows}


test_fee_provider.__test__ = False


@pytest.fixture(autouse=True)
def default_fee_rates(request):
    """The settlement fee rules the default fee provider reads: 0.6 % on every card class (``fee_of``)."""
    if "transactional_db" in request.fixturenames:
        request.getfixturevalue("transactional_db")
    elif "db" in request.fixturenames:
        request.getfixturevalue("db")
    else:
        return
    from reconciliation.choices import CardClass
    from reconciliation.models import FeeRate

    for card_class in CardClass.values:
        FeeRate.objects.get_or_create(merchant=None, card_class=card_class, defaults={"rate_bp": 60})


@pytest.fixture
def ledger_day(db):
    """``make(merchant, n)`` → n successful ledger payments of DAY."""

    def make(merchant, n=5, **fields):
        rows = []
        for index in range(n):
            k = next(_seq)
            when = datetime(2026, 3, 10, 9, 0, tzinfo=BJ) + timedelta(minutes=7 * index)
            values = {
                "merchant": merchant,
                "acquirer_id": merchant.acquirer_id,
                "order_id": f"ORD{k:08d}",
                "txn_time": when,
                "txn_type": "01",
                "amount": 1000 * (index + 1) + k,
                "status": "success",
                "resp_code": "00",
                "query_id": f"20260310{k:013d}",
                "trace_no": f"{k % 10**6:06d}",
                "trace_time": when.strftime("%m%d%H%M%S"),
                "settle_date": settlement_date_for(when),
                "card_masked": "622202******0128",
                "card_type": "01",
                "source": "sandbox",
            }
            values.update(fields)
            rows.append(Transaction.objects.create(**values))
        return rows

    return make


def record_of(txn: Transaction, **changes) -> ZMRecord:
    fee = fee_of(txn.amount)
    values = dict(
        txn_code="S22",
        acquirer_code="00049992",
        sender_code="00049992",
        trace_no=txn.trace_no,
        trans_time=txn.trace_time,
        pan=txn.card_masked,
        amount=txn.amount,
        mcc="5311",
        query_id=txn.query_id,
        order_id=txn.order_id,
        pay_card_type="01",
        merchant_fee=fee,
        settle_amount=txn.amount + fee,
        txn_type="01",
        txn_sub_type="01",
        biz_type="000201",
        mer_id=txn.merchant.code,
    )
    values.update(changes)
    return ZMRecord(**values)


def upstream_zip(mer_id: str, records, day: date = DAY) -> tuple[str, bytes]:
    return build_zip(mer_id=mer_id, settle_date=day, zm=write_zm(records))
