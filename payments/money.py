"""Money at the edges: integer fen inside, yuan with two decimals on screen and in files."""

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation


def fen_to_yuan(fen: int) -> Decimal:
    return (Decimal(fen) / 100).quantize(Decimal("0.01"))


def format_yuan(fen: int | None) -> str:
    """``12345`` → ``"123.45"`` (thousands separated for screens)."""
    return f"{fen_to_yuan(fen or 0):,.2f}"


def yuan_to_fen(value) -> int:
    """A yuan amount (Decimal / str) to integer fen; more than two decimals is an error."""
    try:
        d = Decimal(str(value))
    except InvalidOperation as exc:
        raise ValueError("not an amount") from exc
    if d != d.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP):
        raise ValueError("more than two decimals")
    return int(d * 100)
