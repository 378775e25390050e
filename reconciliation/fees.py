"""Fee arithmetic (pure): merchant discount per transaction, and the fee returned by voids and refunds.

All amounts are integer fen. Rounding is half up to the fen, then the rate's minimum and maximum apply.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Rate:
    rate_bp: int = 0
    min_fee: int = 0
    max_fee: int | None = None


ZERO_RATE = Rate()


def round_half_up_div(numerator: int, denominator: int) -> int:
    """``numerator / denominator`` rounded half up (both non-negative)."""
    return (2 * numerator + denominator) // (2 * denominator)


def payment_fee(amount: int, rate: Rate) -> int:
    """The fee of a payment of ``amount`` fen: rate in basis points, half up, bounded by min and max.

    The fee never exceeds the amount itself (a minimum fee on a 1-fen payment charges 1 fen).
    """
    fee = round_half_up_div(amount * rate.rate_bp, 10_000)
    fee = max(fee, rate.min_fee)
    if rate.max_fee is not None:
        fee = min(fee, rate.max_fee)
    return min(fee, amount)


def refund_fee_return(*, refund_amount: int, original_amount: int, original_fee: int, rule: str) -> int:
    """What a refund gives back of the original payment's fee: nothing (``none``) or the refunded share of it
    (``proportional``, half up, never more than the original fee)."""
    if rule != "proportional" or original_amount <= 0:
        return 0
    return min(original_fee, round_half_up_div(original_fee * refund_amount, original_amount))
