"""Writes of the reference data platform administrators keep (fee rates, working-day overrides), each audited in
the transaction of the write (security D1): ``<prefix>.create`` / ``.update`` / ``.delete`` with the fields
(created, deleted) or the changed fields' old and new values. The Django admin is their only caller today."""

from __future__ import annotations

from django.db import router, transaction
from django.db.models import Model

from portal.audit.services import audit_record


def _snapshot(obj: Model) -> dict:
    """Every stored field of ``obj`` but the primary key (a foreign key as its id)."""
    return {field.name: field.value_from_object(obj) for field in obj._meta.concrete_fields if not field.primary_key}


def _audit(*, actor, prefix: str, verb: str, obj: Model, object_id, organisation, details: dict) -> None:
    audit_record(
        action=f"{prefix}.{verb}",
        actor=actor,
        organisation=organisation,
        object_type=obj._meta.label_lower,
        object_id=object_id,
        details={"admin": True, "object": str(obj), **details},
    )


def reference_save(*, actor, obj: Model, prefix: str, organisation=None, initial: dict | None = None,
                   changed: list[str] | None = None) -> None:  # fmt: skip
    """Save ``obj``, new (``changed`` None) or changed (``changed``: the names of the changed fields, ``initial``
    their values before), and audit it. ``organisation`` None: the event belongs to the actor's organisation."""
    with transaction.atomic(using=router.db_for_write(type(obj))):
        if changed is None:
            obj.save()
            _audit(actor=actor, prefix=prefix, verb="create", obj=obj, object_id=obj.pk, organisation=organisation,
                   details={"fields": _snapshot(obj)})  # fmt: skip
            return
        before = initial or {}
        diff = {name: {"old": before.get(name), "new": obj._meta.get_field(name).value_from_object(obj)}
                for name in changed}  # fmt: skip
        obj.save()
        _audit(actor=actor, prefix=prefix, verb="update", obj=obj, object_id=obj.pk, organisation=organisation,
               details={"changed": diff})  # fmt: skip


def reference_delete(*, actor, obj: Model, prefix: str, organisation=None) -> None:
    """Delete ``obj`` and audit it with the fields it had."""
    with transaction.atomic(using=router.db_for_write(type(obj))):
        pk, snapshot = obj.pk, _snapshot(obj)
        obj.delete()
        _audit(actor=actor, prefix=prefix, verb="delete", obj=obj, object_id=pk, organisation=organisation,
               details={"fields": snapshot})  # fmt: skip
