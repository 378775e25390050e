"""The settlement lines of the ledger: which transactions a settlement day holds and what each one settles.

One function, :func:`settle_line`, says what a transaction costs or brings the merchant (fee and settlement, signed
from the merchant's side: ``D`` negative, ``C`` positive); the day close (``MerchantSettlement``) and the ZM file
both use it, so the file's totals equal the summary by construction.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date

from django.conf import settings
from django.db.models import QuerySet

from payments.choices import TxnStatus, TxnType
from payments.models import Transaction

from .choices import CARD_CLASS_OF, CardClass, FeeReturn
from .fees import ZERO_RATE, Rate, payment_fee, refund_fee_return

PAYMENT_TYPES = frozenset({TxnType.CONSUME, TxnType.PREAUTH_COMPLETE})
VOID_TYPES = frozenset({TxnType.VOID, TxnType.PREAUTH_COMPLETE_VOID})
REFUND_TYPES = frozenset({TxnType.REFUND})
SETTLED_TYPES = PAYMENT_TYPES | VOID_TYPES | REFUND_TYPES

PAYMENT, VOID, REFUND = "payment", "void", "refund"


def category_of(txn_type: str) -> str:
    if txn_type in VOID_TYPES:
        return VOID
    if txn_type in REFUND_TYPES:
        return REFUND
    return PAYMENT


def fee_return_rule() -> str:
    rule = getattr(settings, "RECON_REFUND_FEE_RETURN", FeeReturn.NONE)
    return rule if rule in FeeReturn.values else FeeReturn.NONE


def day_transactions(day: date, merchant_ids=None) -> QuerySet[Transaction]:
    """The successful payments, voids and refunds of settlement day ``day``, in transmission order."""
    qs = Transaction.objects.filter(settle_date=day, status=TxnStatus.SUCCESS, txn_type__in=SETTLED_TYPES)
    if merchant_ids is not None:
        qs = qs.filter(merchant_id__in=merchant_ids)
    return qs.order_by("txn_time", "id")


class FeeBook:
    """The fee rates in force, read once: a merchant's own rate for a card class, else the default one."""

    def __init__(self) -> None:
        from .models import FeeRate

        self._defaults: dict[str, Rate] = {}
        self._own: dict[tuple[int, str], Rate] = {}
        for row in FeeRate.objects.all():
            rate = Rate(row.rate_bp, row.min_fee, row.max_fee)
            if row.merchant_id is None:
                self._defaults[row.card_class] = rate
            else:
                self._own[(row.merchant_id, row.card_class)] = rate

    def rate(self, merchant_id: int, card_type: str) -> Rate:
        card_class = CARD_CLASS_OF.get(card_type, CardClass.OTHER)
        return self._own.get((merchant_id, card_class)) or self._defaults.get(card_class) or ZERO_RATE

    def class_rates(self, merchant_id: int) -> dict[str, Rate]:
        """The rate in force for the merchant per card class, as :meth:`rate` resolves it."""
        return {
            cls: self._own.get((merchant_id, cls)) or self._defaults.get(cls) or ZERO_RATE for cls in CardClass.values
        }


@dataclass(frozen=True, slots=True)
class SettleLine:
    category: str
    amount: int
    fee: int  # signed, merchant's side: a charged fee is negative, a returned fee positive
    settlement: int  # signed: amount credited (payment) or debited (void / refund), plus the fee


def settle_line(txn: Transaction, book: FeeBook, rule: str) -> SettleLine:
    """Fee and settlement of one ledger row (``txn.orig`` is read for voids and refunds)."""
    category = category_of(txn.txn_type)
    if category == PAYMENT:
        fee = payment_fee(txn.amount, book.rate(txn.merchant_id, txn.card_type))
        return SettleLine(category, txn.amount, -fee, txn.amount - fee)
    orig = txn.orig if txn.orig_id else None
    basis = orig if orig is not None else txn
    original_fee = payment_fee(basis.amount, book.rate(basis.merchant_id, basis.card_type or txn.card_type))
    if category == VOID:
        returned = original_fee  # a void cancels the whole payment, fee included
    else:
        returned = refund_fee_return(
            refund_amount=txn.amount, original_amount=basis.amount, original_fee=original_fee, rule=rule
        )
    return SettleLine(category, txn.amount, returned, -txn.amount + returned)


# --- the same rules in SQL (PostgreSQL: the ZM file's fast path, producers/network_pg.py, and the upstream fee
# comparison, upstream/fees.py) -----------------------------------------------------------------------------------

#: Amounts from 10^12 fen do not fit the files' 12 digits; the SQL leaves such rows (and fees) to ``settle_line``.
AMOUNT_LIMIT = 10**12


def _sql_in(values) -> str:
    return "(" + ", ".join(f"'{value}'" for value in sorted(values)) + ")"


def payment_fee_sql(amount: str, card: str, rates: dict[str, Rate], *, limit: bool = True) -> str:
    """SQL of :func:`fees.payment_fee` of ``amount`` paid by card type ``card`` under ``rates``
    (:meth:`FeeBook.class_rates`, written as literals): half up to the fen, then the minimum, the maximum and the
    amount itself. With ``limit``, NULL for an amount from :data:`AMOUNT_LIMIT` (``settle_line``'s business)."""

    def fee(rate: Rate) -> str:
        bounded = f"GREATEST(({amount} * {2 * rate.rate_bp} + 10000) / 20000, {int(rate.min_fee)})"
        maximum = "" if rate.max_fee is None else f", {int(rate.max_fee)}"
        return f"LEAST({bounded}{maximum}, {amount})"

    branches = " ".join(f"WHEN '{code}' THEN {fee(rates[cls])}" for code, cls in sorted(CARD_CLASS_OF.items()))
    by_card = f"CASE {card} {branches} ELSE {fee(rates[CardClass.OTHER])} END"
    return f"CASE WHEN {amount} >= {AMOUNT_LIMIT} THEN NULL ELSE {by_card} END" if limit else by_card


def signed_fee_sql(*, row, orig, reversal: str, rates: dict[str, Rate], proportional_param: str) -> str:
    """SQL of :func:`settle_line`'s signed fee of a ledger row: ``row(column)`` and ``orig(column)`` name the
    columns of the row and of its original (LEFT JOINed: NULLs when there is none), ``reversal`` is a boolean SQL
    expression (the row is a void or a refund), ``rates`` the merchant's :meth:`FeeBook.class_rates` and
    ``%(proportional_param)s`` true when refunds return their share of the fee.

    PostgreSQL evaluates only the branch a row takes, so a payment (most rows) costs one fee. NULL when SQL cannot
    follow ``settle_line``: an amount from :data:`AMOUNT_LIMIT`, an original payment of another merchant."""
    amount = row("amount")
    basis_amount = f"coalesce({orig('amount')}, {amount})"
    basis_card = f"coalesce(nullif({orig('card_type')}, ''), {row('card_type')})"
    base = payment_fee_sql(basis_amount, basis_card, rates, limit=False)
    returned = (
        f"CASE WHEN {basis_amount} >= {AMOUNT_LIMIT} OR {orig('merchant_id')} <> {row('merchant_id')} THEN NULL "
        f"WHEN {row('txn_type')} IN {_sql_in(VOID_TYPES)} THEN {base} "
        f"WHEN %({proportional_param})s AND {basis_amount} > 0 THEN LEAST({base}, "
        f"div(2 * ({base})::numeric * {amount} + {basis_amount}, 2 * ({basis_amount})::numeric)::bigint) "
        f"ELSE 0 END"
    )
    return f"CASE WHEN {reversal} THEN {returned} ELSE -{payment_fee_sql(amount, row('card_type'), rates)} END"


def iter_settle_lines(
    day: date, merchant_ids=None, *, book: FeeBook | None = None, chunk_size: int = 5000
) -> Iterator[tuple[Transaction, SettleLine]]:
    """Every settled transaction of the day with its line (streamed, so a million rows stay in bounded memory)."""
    book = book or FeeBook()
    rule = fee_return_rule()
    qs = day_transactions(day, merchant_ids).select_related("merchant", "acquirer", "orig")
    for txn in qs.iterator(chunk_size=chunk_size):
        yield txn, settle_line(txn, book, rule)
