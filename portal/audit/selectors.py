"""Reads of the audit log, always scoped to what the reader's organisation may see."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from django.db.models import Max, QuerySet
from django.shortcuts import get_object_or_404

from portal.accounts.querysets import visible_organisation_ids

from .formats.csv_export import ExportRow
from .models import AuditEvent
from .services import audit_verify_chain


def audit_events_for(user) -> QuerySet[AuditEvent]:
    """The events ``user`` may read, newest first: its organisation's (an acquirer's includes its
    merchants'), or every event for the platform organisation."""
    return AuditEvent.objects.visible_to(user).select_related("organisation").order_by("-sequence")


def audit_event_get(user, *, sequence: int) -> AuditEvent:
    """One event by sequence number; another organisation's event does not exist (404)."""
    return get_object_or_404(audit_events_for(user), sequence=sequence)


def audit_known_actions(user) -> list[str]:
    """The distinct actions among the events ``user`` may read, for the action filter's suggestions."""
    return list(
        AuditEvent.objects.visible_to(user).order_by("action").values_list("action", flat=True).distinct()[:500]
    )


def audit_export_snapshot(qs: QuerySet[AuditEvent]) -> tuple[QuerySet[AuditEvent], int]:
    """Freeze a filtered queryset at its newest event so that the rows streamed later are exactly
    the rows counted now (events appended meanwhile, such as the export's own, are left out)."""
    upper = qs.aggregate(upper=Max("sequence"))["upper"] or 0
    frozen = qs.filter(sequence__lte=upper)
    return frozen, frozen.count()


def audit_export_rows(qs: QuerySet[AuditEvent], *, chunk_size: int = 2000) -> Iterator[ExportRow]:
    """The rows of ``qs`` newest first, read in keyset-paginated chunks (flat memory)."""
    qs = qs.select_related("organisation").order_by("-sequence")
    last = None
    while True:
        page = qs if last is None else qs.filter(sequence__lt=last)
        chunk = list(page[:chunk_size])
        if not chunk:
            return
        for event in chunk:
            yield ExportRow(
                sequence=event.sequence,
                occurred_at=event.occurred_at,
                actor=event.actor_repr,
                organisation_code=event.organisation.code if event.organisation_id else "",
                action=event.action,
                object_type=event.object_type,
                object_id=event.object_id,
                outcome=event.outcome,
                ip=event.ip or "",
                user_agent=event.user_agent,
                request_id=event.request_id,
                details=event.details,
                hash=event.hash,
            )
        last = chunk[-1].sequence


@dataclass(frozen=True)
class ScopedChainReport:
    """What a reader may learn from verifying the chain: whether it is intact, how many of the
    events in their scope were verified, and the broken sequence when that event is theirs to see.
    A platform reader sees the whole chain's numbers."""

    ok: bool
    verified: int
    first_broken_sequence: int | None
    broken_event_visible: bool
    reason: str


def audit_verify_for(user) -> ScopedChainReport:
    """Verify the whole chain (it cannot be verified in parts) and report it in ``user``'s scope,
    so that an organisation's reader never learns the platform-wide event count."""
    report = audit_verify_chain()
    if visible_organisation_ids(user) is None:
        verified = report.count
        visible = True
    else:
        scoped = AuditEvent.objects.visible_to(user)
        # Events 1..count were verified; the reader learns only how many of them are theirs.
        verified = scoped.filter(sequence__lte=report.count).count()
        visible = report.ok or scoped.filter(sequence=report.first_broken_sequence).exists()
    return ScopedChainReport(
        ok=report.ok,
        verified=verified,
        first_broken_sequence=None if report.ok or not visible else report.first_broken_sequence,
        broken_event_visible=visible and not report.ok,
        reason=report.reason,
    )
