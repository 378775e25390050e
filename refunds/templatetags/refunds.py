"""``{% load refunds %}``: ``user|portal_perm:"refunds.create"`` for showing the refund action."""

from django import template

register = template.Library()


@register.filter
def portal_perm(user, perm: str) -> bool:
    return bool(getattr(user, "is_authenticated", False) and user.has_portal_perm(perm))
