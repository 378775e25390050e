"""Writes for organisations and users. The only code that changes them (UI, API, commands, seed)."""

from __future__ import annotations

from collections.abc import Iterable

from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from portal.audit.services import audit_record

from .models import Organisation, PasswordHistory, RoleAssignment, User
from .roles import ROLES_BY_ORG_KIND
from .validation import validate_organisation


def organisation_create(*, actor: User | None, kind: str, code: str, name_zh: str, name_en: str = "",
                        acquirer: Organisation | None = None, mcc: str = "", status: str = "active") -> Organisation:
    """Create an acquirer, merchant or platform organisation after checking its codes."""
    org = Organisation(kind=kind, code=code, name_zh=name_zh, name_en=name_en, acquirer=acquirer, mcc=mcc,
                       status=status)
    validate_organisation(org)
    with transaction.atomic():
        org.save()
        audit_record(action="organisation.create", actor=actor, organisation=org, obj=org,
                     details={"kind": kind, "code": code})
    return org


def validate_roles_for(organisation: Organisation, roles: Iterable[str]) -> list[str]:
    """The roles, checked against what an organisation of this kind may hold."""
    roles = sorted(set(roles))
    allowed = ROLES_BY_ORG_KIND[organisation.kind]
    bad = [r for r in roles if r not in allowed]
    if bad:
        raise ValidationError({"roles": _("These roles do not exist in this organisation: %(roles)s") % {
            "roles": ", ".join(bad)}})
    return roles


def _record_password(user: User) -> None:
    PasswordHistory.objects.create(user=user, password=user.password)
    keep = list(user.password_history.values_list("pk", flat=True)[: settings.PASSWORD_HISTORY_DEPTH])
    user.password_history.exclude(pk__in=keep).delete()


def user_set_password(*, actor: User | None, user: User, raw_password: str, must_change: bool,
                      action: str = "auth.password_change") -> None:
    """Validate and set a password, keep it in the history and audit the change.

    ``must_change`` forces a change at the next sign-in (created or reset accounts).
    The session epoch moves on, so other sessions of the user end.
    """
    validate_password(raw_password, user)
    with transaction.atomic():
        user.set_password(raw_password)
        user.must_change_password = must_change
        user.session_epoch += 1
        user.save(update_fields=["password", "must_change_password", "session_epoch"])
        _record_password(user)
        audit_record(action=action, actor=actor, organisation=user.organisation, obj=user,
                     details={"username": user.username, "must_change": must_change})


def user_create(*, actor: User | None, organisation: Organisation, username: str, raw_password: str,
                first_name: str = "", last_name: str = "", email: str = "", phone: str = "",
                phone_verified: bool = False, roles: Iterable[str] = (), must_change_password: bool = True,
                language: str = "") -> User:
    """Create a user in ``organisation`` with roles and an initial password (audited)."""
    roles = validate_roles_for(organisation, roles)
    user = User(username=username, organisation=organisation, first_name=first_name, last_name=last_name,
                email=email, phone=phone, phone_verified=phone_verified and bool(phone),
                must_change_password=must_change_password, language=language,
                created_by=actor if getattr(actor, "pk", None) else None)
    user.full_clean(exclude=["password"])
    validate_password(raw_password, user)
    with transaction.atomic():
        user.set_password(raw_password)
        user.save()
        _record_password(user)
        RoleAssignment.objects.bulk_create(
            [RoleAssignment(user=user, role=r, granted_by=user.created_by) for r in roles]
        )
        audit_record(action="user.create", actor=actor, organisation=organisation, obj=user,
                     details={"username": username, "roles": roles})
    return user
