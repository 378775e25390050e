"""The ledger side of the fee comparison: what the portal's own fee rules charge for each transaction of a merchant
day, from the settlement code (``reconciliation.ledger.settle_line`` with the ``FeeBook`` in force), so an upstream fee
that differs from ours is a discrepancy out of the box (``RECON_LEDGER_FEE_PROVIDER``, this module by default)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date

from reconciliation.ledger import FeeBook, day_transactions, fee_return_rule, settle_line


@dataclass(slots=True)
class _Row:
    """The fields of a ledger row that ``settle_line`` reads (a full model instance costs 10× more per row)."""

    txn_type: str
    amount: int
    merchant_id: int
    card_type: str
    orig_id: int | None
    orig: _Row | None


def ledger_fees(merchant, settle_date: date) -> Iterator[tuple[int, int]]:
    """``(transaction id, signed fee in fen)`` for each settled transaction of the merchant day (streamed).

    The fee is signed from the merchant's side, as in the ZM file: a charged fee is negative (``D``), a fee given
    back by a void or a refund positive.
    """
    book = FeeBook()
    rule = fee_return_rule()
    rows = (
        day_transactions(settle_date, [merchant.pk])
        .order_by()
        .values_list(
            "id",
            "txn_type",
            "amount",
            "merchant_id",
            "card_type",
            "orig_id",
            "orig__txn_type",
            "orig__amount",
            "orig__merchant_id",
            "orig__card_type",
        )
    )
    for pk, txn_type, amount, merchant_id, card_type, orig_id, o_type, o_amount, o_merchant, o_card in rows.iterator(
        chunk_size=5000
    ):
        orig = _Row(o_type, o_amount, o_merchant, o_card or "", None, None) if orig_id else None
        line = settle_line(_Row(txn_type, amount, merchant_id, card_type or "", orig_id, orig), book, rule)
        yield pk, line.fee
