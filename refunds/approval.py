"""The refunds' side of the approval engine: the ``refund.single`` approvable."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _


def _describe(request) -> dict:
    from django.urls import reverse

    from .models import Refund

    refund = Refund.objects.filter(pk=request.object_id).only("pk", "order_id", "kind").first()
    if refund is None:
        return {}
    return {"url": reverse("refunds:detail", args=[refund.pk]), "title": f"{refund.get_kind_display()} {refund.order_id}"}


def register() -> None:
    from portal.approvals.registry import register_approvable

    from . import services

    register_approvable(
        services.APPROVAL_KIND,
        label=_("Refund / void"),
        on_approved=services.refund_on_approved,
        on_rejected=services.refund_on_rejected,
        on_expired=services.refund_on_expired,
        on_voided=services.refund_on_cancelled,
        on_cancelled=services.refund_on_cancelled,
        describe=_describe,
        current_content_hash=services.refund_current_hash,
    )
