"""Ledger fixtures: a transaction maker and a few fixed test card numbers."""

import itertools
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from payments.cards import card_hash, mask_pan
from payments.models import Transaction
from payments.settlement import settlement_date_for

BJ = ZoneInfo("Asia/Shanghai")
PAN_A = "6222021234567890128"  # Luhn-valid test numbers
PAN_B = "6258071111222233337"
_seq = itertools.count(1)


def bj(*args) -> datetime:
    """An aware datetime in Beijing time."""
    return datetime(*args, tzinfo=BJ)


@pytest.fixture
def make_txn(db):
    def make(merchant, *, pan: str | None = PAN_A, **fields) -> Transaction:
        n = next(_seq)
        txn_time = fields.pop("txn_time", None) or bj(2026, 3, 10, 12, 0, 0)
        values = {
            "merchant": merchant,
            "acquirer_id": merchant.acquirer_id,
            "order_id": f"ORDER{n:010d}",
            "txn_time": txn_time,
            "txn_type": "01",
            "amount": 10000,
            "status": "success",
            "resp_code": "00",
            "query_id": f"2026{n:017d}",
            "settle_date": settlement_date_for(txn_time),
            "card_masked": mask_pan(pan) if pan else "",
            "card_hash": card_hash(pan) if pan else "",
            "source": "sandbox",
        }
        values.update(fields)
        return Transaction.objects.create(**values)

    return make
