"""Reconciliation fixtures: a ledger row maker, a private MEDIA_ROOT, fee rates and a 'now' after a day."""

import itertools
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from payments.cards import card_hash, mask_pan
from payments.models import Transaction
from payments.settlement import settlement_date_for
from reconciliation.models import FeeRate

BJ = ZoneInfo("Asia/Shanghai")
PAN = "6222021234567890128"
_seq = itertools.count(1)


def bj(*args) -> datetime:
    return datetime(*args, tzinfo=BJ)


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.RECON_REFUND_FEE_RETURN = "none"
    return tmp_path / "media"


@pytest.fixture
def make_txn(db):
    def make(merchant, *, txn_time=None, **fields) -> Transaction:
        n = next(_seq)
        txn_time = txn_time or bj(2026, 3, 10, 12, 0, 0)
        values = {
            "merchant": merchant,
            "acquirer_id": merchant.acquirer_id,
            "order_id": f"RC{n:010d}",
            "txn_time": txn_time,
            "txn_type": "01",
            "amount": 10000,
            "status": "success",
            "resp_code": "00",
            "query_id": f"7026{n:017d}",
            "trace_no": f"{n % 1000000:06d}",
            "trace_time": txn_time.astimezone(BJ).strftime("%m%d%H%M%S"),
            "settle_date": settlement_date_for(txn_time),
            "card_masked": mask_pan(PAN),
            "card_hash": card_hash(PAN),
            "card_type": "01",
            "source": "sandbox",
        }
        values.update(fields)
        return Transaction.objects.create(**values)

    return make


@pytest.fixture
def rates(db):
    """Default rates: debit 0.38% (min 10 fen, max 20 yuan), credit 0.60%, other 1%."""
    return [
        FeeRate.objects.create(card_class="debit", rate_bp=38, min_fee=10, max_fee=2000),
        FeeRate.objects.create(card_class="credit", rate_bp=60, min_fee=0, max_fee=None),
        FeeRate.objects.create(card_class="other", rate_bp=100, min_fee=0, max_fee=None),
    ]
