"""The refunds' side of the approval engine: the ``refund.single`` approvable."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _


def _describe(request) -> dict:
    from django.urls import reverse

    from .models import Refund

    refund = Refund.objects.filter(pk=request.object_id).only("pk", "order_id", "kind").first()
    if refund is None:
        return {}
    return {
        "url": reverse("refunds:detail", args=[refund.pk]),
        "title": f"{refund.get_kind_display()} {refund.order_id}",
    }


def _describe_batch(request) -> dict:
    from django.urls import reverse

    from portal.batches.models import Batch

    batch = Batch.objects.filter(pk=request.object_id).only("pk", "original_name").first()
    if batch is None:
        return {}
    return {"url": reverse("refunds:batch_detail", args=[batch.pk]), "title": f"#{batch.pk} {batch.original_name}"}


def point_batch_reviews_here() -> None:
    """Keep the pipeline's hooks for ``refund.batch`` but send reviewers to the refund batch page,
    which shows the approval history and the decision form."""
    from portal.approvals.registry import get_approvable, register_approvable

    current = get_approvable("refund.batch")
    if current is None:
        return
    register_approvable(
        current.kind,
        on_approved=current.on_approved,
        label=current.label,
        on_rejected=current.on_rejected,
        on_expired=current.on_expired,
        on_voided=current.on_voided,
        on_cancelled=current.on_cancelled,
        describe=_describe_batch,
        current_content_hash=current.current_content_hash,
        editors=current.editors,
        edited_by=current.edited_by,
    )


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
