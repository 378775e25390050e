"""The ledger side of the fee comparison: what the portal's own fee rules charge for each transaction of a merchant
day, from the settlement code (``reconciliation.ledger.settle_line`` with the ``FeeBook`` in force), so an upstream fee
that differs from ours is a discrepancy out of the box (``RECON_LEDGER_FEE_PROVIDER``, this module by default)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date

from payments.choices import TxnStatus
from payments.models import Transaction
from reconciliation.ledger import (
    AMOUNT_LIMIT,
    REFUND_TYPES,
    SETTLED_TYPES,
    VOID_TYPES,
    FeeBook,
    day_transactions,
    fee_return_rule,
    settle_line,
    signed_fee_sql,
)


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
    yield from _fees_of(day_transactions(settle_date, [merchant.pk]).order_by())


def _fees_of(rows) -> Iterator[tuple[int, int]]:
    book = FeeBook()
    rule = fee_return_rule()
    rows = rows.values_list(
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
    for pk, txn_type, amount, merchant_id, card_type, orig_id, o_type, o_amount, o_merchant, o_card in rows.iterator(
        chunk_size=5000
    ):
        orig = _Row(o_type, o_amount, o_merchant, o_card or "", None, None) if orig_id else None
        line = settle_line(_Row(txn_type, amount, merchant_id, card_type or "", orig_id, orig), book, rule)
        yield pk, line.fee


# --- the same fees in SQL (PostgreSQL): the fee comparison computes them in its own join, no per-row Python -------

_DAY_TYPES = "(" + ", ".join(f"'{t}'" for t in sorted(SETTLED_TYPES)) + ")"
_REVERSAL_TYPES = "(" + ", ".join(f"'{t}'" for t in sorted(VOID_TYPES | REFUND_TYPES)) + ")"


def sql_fees_available() -> bool:
    """True when the ledger fees can be computed in SQL: PostgreSQL and every fee rate within bigint arithmetic
    (the bound of the ZM file's fast path, ``producers.network_pg``)."""
    from django.db import connection

    from reconciliation.models import FeeRate
    from reconciliation.producers.network_pg import MAX_RATE_BP

    return connection.vendor == "postgresql" and not FeeRate.objects.filter(rate_bp__gt=MAX_RATE_BP).exists()


def ledger_fee_layers(*, select: str, source: str, day_param: str, rates: dict, proportional_param: str) -> str:
    """SQL of ``SELECT … FROM source`` (``t`` the ledger row, ``o`` its original LEFT JOINed) with one more column,
    ``sql_fee``: :func:`ledger_fees`' fee of ``t`` when it is a settled transaction of day ``%(day_param)s``, NULL
    otherwise and when SQL cannot follow ``settle_line`` (an amount from ``AMOUNT_LIMIT``, an original payment of
    another merchant: :func:`python_only_fees` gives those). ``rates``: the merchant's ``FeeBook.class_rates``."""
    fee = signed_fee_sql(
        row=lambda column: f"t.{column}",
        orig=lambda column: f"o.{column}",
        reversal=f"t.txn_type IN {_REVERSAL_TYPES}",
        rates=rates,
        proportional_param=proportional_param,
    )
    in_day = f"t.settle_date = %({day_param})s AND t.status = '{TxnStatus.SUCCESS}' AND t.txn_type IN {_DAY_TYPES}"
    return f"SELECT {select}, CASE WHEN {in_day} THEN {fee} END AS sql_fee FROM {source}"


def python_only_fees(merchant, settle_date: date) -> Iterator[tuple[int, int]]:
    """``(transaction id, fee)`` of the merchant day's rows whose fee :func:`ledger_fee_layers` leaves to Python
    (normally none): :func:`ledger_fees`' rule, restricted to those rows. One pass over the day's rows; the original
    of a row is only looked up when it has one."""
    from django.db import connection

    table = Transaction._meta.db_table
    sql = (
        f"SELECT t.id FROM {table} t WHERE t.merchant_id = %s AND t.settle_date = %s AND t.status = %s "
        f"AND t.txn_type IN {_DAY_TYPES} AND (t.amount >= %s OR (t.orig_id IS NOT NULL AND EXISTS ("
        f"SELECT 1 FROM {table} o WHERE o.id = t.orig_id AND (o.amount >= %s OR o.merchant_id <> t.merchant_id))))"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [merchant.pk, settle_date, TxnStatus.SUCCESS, AMOUNT_LIMIT, AMOUNT_LIMIT])
        ids = [row[0] for row in cursor.fetchall()]
    for start in range(0, len(ids), 5000):
        yield from _fees_of(Transaction.objects.filter(pk__in=ids[start : start + 5000]).order_by())
