"""The one helper that writes audit events, and the chain verification."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext_noop

from portal.core.context import current_origin
from portal.core.logging import mask_card_numbers

from .models import AuditChainHead, AuditEvent, AuditOutcome
from .sink import event_json, sink_enabled, sink_send

GENESIS_HASH = "0" * 64

# Keys whose values are never written to an audit event.
# (An organisation "code" or a "resp_code" is not a secret; one-time codes are named otp/sms_code.)
_SECRET_KEY = re.compile(
    r"pass|secret|token|otp|sms_?code|verification_?code|^pan$|card_?no|card_number|acc_?no|cvv|cvn|^pin$", re.I
)


def _scrub(value: Any) -> Any:
    """Drop secrets by key and mask digit runs that could be card numbers."""
    if isinstance(value, dict):
        return {str(k): ("[redacted]" if _SECRET_KEY.search(str(k)) else _scrub(v)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub(v) for v in value]
    if isinstance(value, str):
        return mask_card_numbers(value)
    if value is None or isinstance(value, bool | int | float):
        return value
    return str(value)


def _escape_unprintable(text: str) -> str:
    """Escape control and other unprintable characters (so that a crafted username cannot forge
    log lines), keeping printable non-ASCII such as Chinese names as they are."""
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in text)


def _normalise_ip(ip: str | None) -> str | None:
    """The IP as the database returns it, so that the hash computed before the insert matches
    the one recomputed from the stored row (IPv6 is stored in its compressed form)."""
    if not ip:
        return None
    return AuditEvent._meta.get_field("ip").get_prep_value(ip)


def canonical_content(event: AuditEvent) -> bytes:
    """The bytes the event's hash covers: every field but the hash, in a fixed order."""
    payload = {
        "sequence": event.sequence,
        "occurred_at": event.occurred_at.astimezone(timezone.UTC).isoformat(timespec="microseconds"),
        "actor_id": event.actor_id,
        "actor_repr": event.actor_repr,
        "organisation_id": event.organisation_id,
        "action": event.action,
        "object_type": event.object_type,
        "object_id": event.object_id,
        "outcome": event.outcome,
        "ip": event.ip,
        "user_agent": event.user_agent,
        "request_id": event.request_id,
        "details": event.details,
        "prev_hash": event.prev_hash,
    }
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def compute_hash(event: AuditEvent) -> str:
    return hashlib.sha256(canonical_content(event)).hexdigest()


def audit_record(
    *,
    action: str,
    actor=None,
    actor_repr: str | None = None,
    organisation=None,
    obj=None,
    object_type: str = "",
    object_id: str | int = "",
    outcome: str = AuditOutcome.SUCCESS,
    details: dict | None = None,
) -> AuditEvent:
    """Append one audit event in the caller's transaction.

    ``actor`` is a user or None (anonymous, a job); ``actor_repr`` survives the user's deletion
    and names an attempted username for failed logins. ``organisation`` defaults to the actor's.
    ``details`` is scrubbed of secrets, codes and card numbers before it is stored. After commit,
    a copy goes to the off-box sink when one is configured (``portal.audit.sink``).
    """
    if obj is not None:
        object_type = object_type or obj._meta.label_lower
        object_id = object_id or obj.pk
    if organisation is None and actor is not None and getattr(actor, "organisation_id", None):
        organisation = actor.organisation
    if actor_repr is None:
        actor_repr = actor.get_username() if actor is not None else ""
    origin = current_origin()
    actor_repr = _escape_unprintable(actor_repr)[:150]
    with transaction.atomic():
        # The UPDATE takes the row lock (PostgreSQL) or the write lock (SQLite) before the read.
        AuditChainHead.objects.filter(pk=1).update(last_sequence=F("last_sequence") + 1)
        head = AuditChainHead.objects.get(pk=1)
        event = AuditEvent(
            sequence=head.last_sequence,
            occurred_at=timezone.now(),
            actor=actor if getattr(actor, "pk", None) else None,
            actor_repr=actor_repr,
            organisation=organisation,
            action=action,
            object_type=object_type,
            object_id=str(object_id),
            outcome=outcome,
            ip=_normalise_ip(origin.ip),
            user_agent=origin.user_agent[:255],
            request_id=origin.request_id,
            details=_scrub(details or {}),
            prev_hash=head.last_hash,
        )
        event.hash = compute_hash(event)
        event.save(force_insert=True)
        AuditChainHead.objects.filter(pk=1).update(last_hash=event.hash)
        if sink_enabled():
            _copy_off_box_on_commit(event)
    return event


def _copy_off_box_on_commit(event: AuditEvent) -> None:
    """Send the event's JSON to the off-box sink once the outermost transaction commits (never if
    it rolls back). Built now, while the event is at hand; a closure, not a partial, so that
    Django's ``robust`` error log names the function and not the event's content."""
    sequence, line = event.sequence, event_json(event)

    def copy_audit_event_off_box() -> None:
        sink_send(sequence=sequence, line=line)

    transaction.on_commit(copy_audit_event_off_box, robust=True)


# Why a chain is broken. Plain English for the command line; the pages translate them.
REASON_ALTERED = gettext_noop("content altered")
REASON_LINK = gettext_noop("link to the previous event broken")
REASON_GAP = gettext_noop("missing or reordered event")
REASON_TAIL = gettext_noop("events missing at the end of the chain")
REASON_NO_HEAD = gettext_noop("chain head missing")


@dataclass(frozen=True)
class ChainReport:
    """The result of walking the chain: ``count`` events verified before the first broken one."""

    ok: bool
    count: int
    first_broken_sequence: int | None = None
    reason: str = ""


def audit_verify_chain(batch_size: int = 5000) -> ChainReport:
    """Walk the chain in sequence order; report the first event that breaks it.

    Detects an altered event (hash mismatch), a removed or reordered one (sequence gap or
    prev_hash mismatch) and a removed tail (the head names a later sequence). The head is read
    first and only events up to it are walked, so events appended while the walk runs do not
    count as a broken tail. Events are read in keyset-paginated chunks of ``batch_size``, so
    memory stays flat on millions of rows.
    """
    head = AuditChainHead.objects.filter(pk=1).values_list("last_sequence", "last_hash").first()
    expected_prev = GENESIS_HASH
    expected_seq = 1
    count = 0
    qs = AuditEvent.objects.order_by("sequence")
    if head is not None:
        qs = qs.filter(sequence__lte=head[0])
    last_seen = 0
    while True:
        chunk = list(qs.filter(sequence__gt=last_seen)[:batch_size])
        if not chunk:
            break
        for event in chunk:
            if event.sequence != expected_seq:
                return ChainReport(False, count, expected_seq, REASON_GAP)
            if event.prev_hash != expected_prev:
                return ChainReport(False, count, event.sequence, REASON_LINK)
            if compute_hash(event) != event.hash:
                return ChainReport(False, count, event.sequence, REASON_ALTERED)
            expected_prev = event.hash
            expected_seq += 1
            count += 1
            last_seen = event.sequence
    if head is None:
        if count:
            return ChainReport(False, count, count + 1, REASON_NO_HEAD)
        return ChainReport(True, 0)
    if head[0] != count or head[1] != expected_prev:
        return ChainReport(False, count, count + 1, REASON_TAIL)
    return ChainReport(True, count)


def audit_log_access(
    *, actor, action: str, object_id: str | int = "", details: dict | None = None, outcome: str = AuditOutcome.SUCCESS
) -> AuditEvent:
    """Record that ``actor`` read the audit log (a page, an event, an export, a verification).

    Reading the audit trail is itself audited (PCI 10.2.1.3); the event belongs to the actor's
    organisation so that the same auditors see who looked.
    """
    return audit_record(
        action=action,
        actor=actor,
        object_type="audit.auditevent" if object_id != "" else "",
        object_id=object_id,
        outcome=outcome,
        details=details,
    )
