from django import template

from payments.money import format_yuan

register = template.Library()


@register.filter
def yuan(fen) -> str:
    """Integer fen as yuan with two decimals (``-12345`` → ``-123.45``)."""
    if fen is None:
        return ""
    sign = "-" if fen < 0 else ""
    return sign + format_yuan(abs(fen))
