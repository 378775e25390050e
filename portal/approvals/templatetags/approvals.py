"""``{% load approvals %}``: an object's approval history (with the decision form) and money in yuan.

On a domain page::

    {% load approvals %}
    {% approval_history "refunds.refund" refund.pk %}
    {% approval_history "refunds.batch" batch.pk seen_hash=batch.content_hash %}
"""

from decimal import Decimal

from django import template
from django.middleware.csrf import get_token

from ..registry import describe_request, kind_label
from ..selectors import approval_can_decide, approval_history_for

register = template.Library()


@register.filter
def fen_yuan(fen) -> str:
    """``12345`` → ``"123.45"`` with thousands separators."""
    try:
        return f"{(Decimal(int(fen)) / 100).quantize(Decimal('0.01')):,.2f}"
    except (TypeError, ValueError):
        return ""


def approval_history_context(request, obj_type: str, obj_id, seen_hash: str | None = None) -> dict:
    """The context of ``approvals/_history.html`` for ``request.user``: the object's requests (newest first),
    each with its stages and whether the user may decide it now. Usable from a view too."""
    user = request.user
    items = []
    for approval in approval_history_for(obj_type, obj_id, user=user):
        items.append(
            {
                "request": approval,
                "kind": kind_label(approval.kind),
                "stages": list(approval.stages.all()),
                "can_decide": approval_can_decide(user, approval),
                "current": approval.current_stage,
                "seen_hash": seen_hash or approval.content_hash,
                "object": describe_request(approval),
            }
        )
    return {"approval_items": items, "next_url": request.get_full_path(), "csrf_token": get_token(request)}


@register.inclusion_tag("approvals/_history.html", takes_context=True)
def approval_history(context, obj_type: str, obj_id, seen_hash: str | None = None) -> dict:
    return approval_history_context(context["request"], obj_type, obj_id, seen_hash)
