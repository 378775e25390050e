"""The one status-transition helper: check the app's transition map, then compare-and-set."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from django.db import models, transaction
from django.utils import timezone


def move_status(
    model: type[models.Model],
    pk: int,
    *,
    old: str | Iterable[str],
    new: str,
    transitions: Mapping[str, Iterable[str]],
    guard: dict | None = None,
    record: Callable[[str, str], None] | None = None,
    **fields,
) -> str | None:
    """Move row ``pk`` of ``model`` to ``new`` if its status is one of ``old`` and ``transitions``
    allows the move. The row is locked, then updated only while it still has the status read (plus
    ``guard`` filters), so concurrent callers get exactly one winner. ``record(from, to)`` writes the
    app's status-change row in the same transaction. Returns the status left, or None when it did not move.
    """
    old = {old} if isinstance(old, str) else set(old)
    with transaction.atomic():
        current = model.objects.select_for_update().filter(pk=pk).values_list("status", flat=True).first()
        if current is None or current not in old or new not in transitions.get(current, frozenset()):
            return None
        moved = model.objects.filter(pk=pk, status=current, **(guard or {})).update(
            status=new, updated_at=timezone.now(), **fields
        )
        if not moved:
            return None
        if record is not None:
            record(current, new)
    return current
