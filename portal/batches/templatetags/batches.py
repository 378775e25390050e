from decimal import Decimal

from django import template

register = template.Library()


@register.filter
def yuan(fen) -> str:
    """Integer fen → ``1,234.56``."""
    try:
        return f"{(Decimal(int(fen or 0)) / 100).quantize(Decimal('0.01')):,.2f}"
    except (TypeError, ValueError):
        return ""


@register.filter
def get_item(mapping, key):
    """``mapping[key]`` or an empty string (for the parsed columns of a line)."""
    try:
        return mapping.get(key, "")
    except AttributeError:
        return ""
