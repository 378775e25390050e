"""The batch pipeline's side of the approval engine: one approvable per batch kind.

The hooks run inside the engine's transaction; they move the batch with the status helper and
enqueue processing on commit (see ``services``).
"""

from __future__ import annotations

OBJECT_TYPE = "batches.batch"


def batch_content_hash(batch) -> str:
    """What the reviewer approves: the file's SHA-256 and the validated summary. Any change of the
    counts or amounts after submission gives another hash, and the engine refuses the approval."""
    from portal.approvals.services import approval_content_hash

    return approval_content_hash(
        {
            "batch": batch.pk,
            "kind": batch.kind,
            "sha256": batch.sha256,
            "total_lines": batch.total_lines,
            "valid_lines": batch.valid_lines,
            "invalid_lines": batch.invalid_lines,
            "total_amount": batch.total_amount,
            "valid_amount": batch.valid_amount,
        }
    )


def _batch_id(request) -> int | None:
    try:
        return int(request.object_id)
    except (TypeError, ValueError):
        return None


def _on_approved(request) -> None:
    from .services import batch_on_approved

    batch_on_approved(batch_id=_batch_id(request), approval=request)


def _ended(to_status: str):
    def hook(request) -> None:
        from .services import batch_on_review_ended

        batch_on_review_ended(batch_id=_batch_id(request), to_status=to_status, approval=request)

    return hook


def _describe(request) -> dict:
    from django.urls import reverse

    from .models import Batch

    batch = Batch.objects.filter(pk=_batch_id(request)).only("pk", "kind", "original_name").first()
    if batch is None:
        return {}
    return {"url": reverse("batches:detail", args=[batch.pk]), "title": f"#{batch.pk} {batch.original_name}"}


def _editors(request) -> set[int]:
    """Who prepared the batch, and so counts as a maker of its approval request besides the submitter
    (security.md G1): the uploader — who may be an acquirer's reviewer uploading on a merchant's behalf —
    and anyone who moved the batch (submitted it, and any later hand on it). Approval decisions are
    recorded on the request's stages, not as batch status changes, so a reviewer never lands here."""
    from .models import Batch, BatchStatusChange

    batch_id = _batch_id(request)
    if batch_id is None:
        return set()
    editors = set(
        BatchStatusChange.objects.filter(batch_id=batch_id, actor__isnull=False).values_list("actor_id", flat=True)
    )
    editors.update(Batch.objects.filter(pk=batch_id).values_list("uploaded_by_id", flat=True))
    return editors


def _edited_by(user):
    """The batches ``user`` prepared (as ``_editors`` counts them), as approval object ids: kept out of their
    inbox, where they could not decide them."""
    from django.db.models import CharField, Q
    from django.db.models.functions import Cast

    from .models import Batch

    return (
        Batch.objects.filter(Q(uploaded_by=user) | Q(status_changes__actor=user))
        .annotate(object_key=Cast("pk", CharField()))
        .values("object_key")
    )


def _current_hash(object_type: str, object_id) -> str | None:
    from .models import Batch

    if object_type != OBJECT_TYPE:
        return None
    batch = Batch.objects.filter(pk=object_id).first()
    return batch_content_hash(batch) if batch is not None else None


def register_kind_approvable(kind) -> None:
    from portal.approvals.registry import register_approvable

    from .choices import BatchStatus

    register_approvable(
        kind.approval_kind,
        label=kind.label,
        on_approved=_on_approved,
        on_rejected=_ended(BatchStatus.REJECTED),
        on_expired=_ended(BatchStatus.EXPIRED),
        on_voided=_ended(BatchStatus.CANCELLED),
        on_cancelled=_ended(BatchStatus.CANCELLED),
        describe=_describe,
        current_content_hash=_current_hash,
        editors=_editors,
        edited_by=_edited_by,
    )
