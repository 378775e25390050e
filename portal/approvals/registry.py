"""Approvable kinds register here what happens on their decisions; the engine imports no domain app.

A domain app registers in its ``AppConfig.ready()``::

    register_approvable(
        "refund.single",
        label=_("Refund"),
        on_approved=refund_on_approved,          # (ApprovalRequest) -> None
        on_rejected=refund_on_rejected,          # optional, same signature
        on_expired=refund_on_expired,            # optional
        on_voided=refund_on_voided,              # optional
        on_cancelled=refund_on_cancelled,        # optional
        describe=lambda req: {"url": ..., "title": ...},   # optional: link on the inbox and history
        current_content_hash=lambda object_type, object_id: ...,  # optional: hash of the object *now*
        editors=lambda req: {user_id, ...},      # optional: people who edited it (they cannot decide)
        edited_by=lambda user: <object ids>,     # optional: the objects ``user`` edited (a queryset of
                                                 # object_id strings), kept out of their inbox
    )

**Hooks run inside the database transaction that moves the request** (the compare-and-set from
pending to approved / rejected / expired / voided / cancelled). ``on_approved`` is therefore called
exactly once per request: if it raises, the decision is rolled back with it. A hook must not call
the gateway or send anything itself: it updates its own rows and enqueues its background job with
``transaction.on_commit`` so that the job starts only once the approval is committed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .models import ApprovalRequest

Hook = Callable[["ApprovalRequest"], None]


@dataclass(frozen=True)
class Approvable:
    kind: str
    on_approved: Hook
    label: Any = None
    on_rejected: Hook | None = None
    on_expired: Hook | None = None
    on_voided: Hook | None = None
    on_cancelled: Hook | None = None
    describe: Callable[[ApprovalRequest], dict] | None = None
    current_content_hash: Callable[[str, str], str | None] | None = None
    editors: Callable[[ApprovalRequest], Iterable[int]] | None = None
    edited_by: Callable[[Any], Any] | None = None

    @property
    def display(self) -> str:
        return str(self.label) if self.label else self.kind


_REGISTRY: dict[str, Approvable] = {}


def register_approvable(
    kind: str,
    *,
    on_approved: Hook,
    label: Any = None,
    on_rejected: Hook | None = None,
    on_expired: Hook | None = None,
    on_voided: Hook | None = None,
    on_cancelled: Hook | None = None,
    describe: Callable[[ApprovalRequest], dict] | None = None,
    current_content_hash: Callable[[str, str], str | None] | None = None,
    editors: Callable[[ApprovalRequest], Iterable[int]] | None = None,
    edited_by: Callable[[Any], Any] | None = None,
) -> Approvable:
    """Register (or re-register) what the engine calls for requests of ``kind``. See the module docstring."""
    if not kind or not callable(on_approved):
        raise ValueError("an approvable kind needs a name and an on_approved callable")
    approvable = Approvable(
        kind=kind,
        on_approved=on_approved,
        label=label,
        on_rejected=on_rejected,
        on_expired=on_expired,
        on_voided=on_voided,
        on_cancelled=on_cancelled,
        describe=describe,
        current_content_hash=current_content_hash,
        editors=editors,
        edited_by=edited_by,
    )
    _REGISTRY[kind] = approvable
    return approvable


def unregister_approvable(kind: str) -> None:
    """Forget ``kind`` (tests)."""
    _REGISTRY.pop(kind, None)


def get_approvable(kind: str) -> Approvable | None:
    return _REGISTRY.get(kind)


def registered_kinds() -> list[str]:
    return sorted(_REGISTRY)


def edited_by_lookups() -> list[tuple[str, Callable[[Any], Any]]]:
    """``(kind, edited_by)`` of the kinds that can say which objects a user edited."""
    return [(kind, a.edited_by) for kind, a in sorted(_REGISTRY.items()) if a.edited_by is not None]


def describe_request(request: ApprovalRequest) -> dict:
    """``{"url": ..., "title": ...}`` of the approved thing, as its kind describes it (empty url when unknown)."""
    approvable = get_approvable(request.kind)
    described: dict = {}
    if approvable and approvable.describe:
        try:
            described = dict(approvable.describe(request) or {})
        except Exception:  # a broken describe must not break the inbox
            described = {}
    described.setdefault("url", "")
    described.setdefault("title", request.summary or f"{request.object_type} {request.object_id}")
    return described


def kind_label(kind: str) -> str:
    approvable = get_approvable(kind)
    return approvable.display if approvable else kind
