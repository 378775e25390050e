from django import template

from payments.gateway.acp.reconfiles import dc

register = template.Library()


@register.filter
def fen(value) -> str:
    """Signed fen as yuan with two decimals (``-7936`` → ``-79.36``); blank for None."""
    if value is None or value == "":
        return "—"
    value = int(value)
    sign = "-" if value < 0 else ""
    return f"{sign}{abs(value) // 100:,}.{abs(value) % 100:02d}"


@register.filter
def dcfen(value) -> str:
    """A signed fen amount the way the files write its side: ``D7936`` / ``C1314764``."""
    return "—" if value is None else dc(int(value))
