"""Writes for organisations and users. The only code that changes them (UI, API, commands, seed)."""

from __future__ import annotations

from collections.abc import Iterable

from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from portal.audit.services import audit_record

from .models import VERIFIED_PHONE_CONSTRAINT, Organisation, PasswordHistory, RoleAssignment, User, canonical_phone
from .phones import normalise_phone
from .roles import ROLES_BY_ORG_KIND
from .validation import validate_organisation
from .validators import validate_username_not_generic


def organisation_create(
    *,
    actor: User | None,
    kind: str,
    code: str,
    name_zh: str,
    name_en: str = "",
    acquirer: Organisation | None = None,
    mcc: str = "",
    status: str = "active",
) -> Organisation:
    """Create an acquirer, merchant or platform organisation after checking its codes."""
    org = Organisation(
        kind=kind, code=code, name_zh=name_zh, name_en=name_en, acquirer=acquirer, mcc=mcc, status=status
    )
    validate_organisation(org)
    with transaction.atomic():
        org.save()
        audit_record(
            action="organisation.create", actor=actor, organisation=org, obj=org, details={"kind": kind, "code": code}
        )
    return org


def validate_roles_for(organisation: Organisation, roles: Iterable[str]) -> list[str]:
    """The roles, checked against what an organisation of this kind may hold."""
    roles = sorted(set(roles))
    allowed = ROLES_BY_ORG_KIND[organisation.kind]
    bad = [r for r in roles if r not in allowed]
    if bad:
        raise ValidationError(
            {"roles": _("These roles do not exist in this organisation: %(roles)s") % {"roles": ", ".join(bad)}}
        )
    return roles


def phone_in_use_by_another(phone: str, *, user: User | None = None) -> bool:
    """Whether an active user other than ``user`` has ``phone`` as their verified phone (their SMS factor).

    One SMS factor per person (PCI 8.2.1, security check B1): two accounts on one phone would let
    whoever holds the phone sign in as either. The same mainland number typed with or without the
    country code is the same phone (``phones.normalise_phone``). The database constraint
    ``VERIFIED_PHONE_CONSTRAINT`` enforces the same rule for writes that race this check
    (``is_phone_constraint_violation``).
    """
    if not phone:
        return False
    others = User.objects.alias(canonical=canonical_phone()).filter(
        is_active=True, phone_verified=True, canonical=normalise_phone(phone)
    )
    if user is not None and user.pk:
        others = others.exclude(pk=user.pk)
    return others.exists()


def is_phone_constraint_violation(exc: IntegrityError) -> bool:
    """Whether ``exc`` is the database refusing a second active user with the same verified phone
    (two writes that both passed ``phone_in_use_by_another`` before either committed)."""
    return VERIFIED_PHONE_CONSTRAINT in str(exc)


def phone_in_use_error() -> ValidationError:
    return ValidationError(
        _(
            "Another active user already has this mobile phone number: each person needs their own phone "
            "for sign-in codes."
        ),
        code="phone_in_use",
    )


def _clean_user(user: User, *, check_username: bool, check_phone: bool) -> None:
    """``full_clean`` plus the identity rules (security check B1), every error at once, by field.

    ``check_username``: the username must not be generic (``validators.is_generic_username``);
    checked where a username is chosen (creation: no service renames a user).
    ``check_phone``: a phone set on an active account must be no other active user's verified phone
    (``phone_in_use_by_another``), whether it is verified (it would be one SMS factor for two people)
    or not yet (its first sign-in code could never confirm it); checked when the phone is set or changed.
    """
    errors: dict[str, list[ValidationError]] = {}
    try:
        # The phone constraint is checked below, by phone_in_use_by_another, with its message on the field.
        user.full_clean(exclude=["password"], validate_constraints=False)
    except ValidationError as exc:
        errors = exc.update_error_dict(errors)
    if check_username and "username" not in errors:
        try:
            validate_username_not_generic(user.username)
        except ValidationError as exc:
            errors.setdefault("username", []).extend(exc.error_list)
    if check_phone and "phone" not in errors and user.is_active and phone_in_use_by_another(user.phone, user=user):
        errors.setdefault("phone", []).append(phone_in_use_error())
    if errors:
        raise ValidationError(errors)


def _record_password(user: User) -> None:
    PasswordHistory.objects.create(user=user, password=user.password)
    keep = list(user.password_history.values_list("pk", flat=True)[: settings.PASSWORD_HISTORY_DEPTH])
    user.password_history.exclude(pk__in=keep).delete()


def user_set_password(
    *, actor: User | None, user: User, raw_password: str, must_change: bool, action: str = "auth.password_change"
) -> None:
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
        audit_record(
            action=action,
            actor=actor,
            organisation=user.organisation,
            obj=user,
            details={"username": user.username, "must_change": must_change},
        )


def user_create(
    *,
    actor: User | None,
    organisation: Organisation,
    username: str,
    raw_password: str,
    first_name: str = "",
    last_name: str = "",
    email: str = "",
    phone: str = "",
    phone_verified: bool = False,
    roles: Iterable[str] = (),
    must_change_password: bool = True,
    language: str = "",
) -> User:
    """Create a user in ``organisation`` with roles and an initial password (audited).

    The phone is stored in its canonical form (``phones.normalise_phone``). ``phone_verified`` True
    only for a phone already proven some other way (the seeded demo users): an administrator's phone
    is stored unverified (``user_create_managed``; security check A8).
    Refuses a generic username (``admin``, ``test1``…) and a phone that another active user already
    has as their verified phone (security check B1, see ``_clean_user``; also when a concurrent write
    wins the race to the database constraint); the password passes every configured validator,
    context words included.
    """
    roles = validate_roles_for(organisation, roles)
    phone = normalise_phone(phone)
    user = User(
        username=username,
        organisation=organisation,
        first_name=first_name,
        last_name=last_name,
        email=email,
        phone=phone,
        phone_verified=phone_verified and bool(phone),
        must_change_password=must_change_password,
        language=language,
        created_by=actor if getattr(actor, "pk", None) else None,
    )
    _clean_user(user, check_username=True, check_phone=True)
    validate_password(raw_password, user)
    try:
        with transaction.atomic():
            user.set_password(raw_password)
            user.save()
            _record_password(user)
            RoleAssignment.objects.bulk_create(
                [RoleAssignment(user=user, role=r, granted_by=user.created_by) for r in roles]
            )
            audit_record(
                action="user.create",
                actor=actor,
                organisation=organisation,
                obj=user,
                details={"username": username, "roles": roles},
            )
    except IntegrityError as exc:
        if not is_phone_constraint_violation(exc):
            raise
        raise ValidationError({"phone": [phone_in_use_error()]}) from exc
    return user


# --- User management ---
#
# Who may manage whom, and which roles they may grant (the rule every write below enforces,
# whatever the caller: UI, API, command):
#
# * A platform administrator manages every user and may grant any role valid for the target
#   organisation's kind (ROLES_BY_ORG_KIND), platform_admin included.
# * An acquirer administrator manages the users of its own acquirer only (not its merchants'
#   users) and may grant acquirer_admin, acquirer_reviewer and auditor.
# * A merchant administrator manages the users of its own merchant and may grant merchant_admin,
#   merchant_operator, merchant_reviewer and auditor.
# * Nobody but a platform administrator grants platform_admin; nobody changes their own roles
#   (no self-escalation) and nobody disables themselves.
# * Out of scope → ``User.DoesNotExist`` (the views turn it into a 404); a forbidden role →
#   ``ValidationError`` on ``roles`` with a message naming the roles.
# * Phones typed in by an administrator are stored unverified (security check A8: a phone becomes
#   a factor only once a code sent to it has come back). Such an enrolment phone receives the
#   user's sign-in codes, and the first right sign-in code confirms it (``auth_services.
#   auth_otp_verify``, audited ``auth.phone_verified``); until then it is no step-up factor. The
#   audit event of the change says so (``phone_set_by_admin``, ``phone_verified`` False) and
#   stores phones masked. The user's own phone change is confirmed by a code (verified at once).
# * Phones are stored in their canonical form (``phones.normalise_phone``: a mainland mobile as its
#   11-digit national number), by every write path.
# * One identity per person (security check B1): no generic username (``admin``, ``test1``,
#   ``admin.01``; ``validators.is_generic_username`` has the rule) and no verified phone shared by
#   two active users (``phone_in_use_by_another``), checked at creation, phone change, re-enabling
#   and phone confirmation, and enforced by a database constraint (``VERIFIED_PHONE_CONSTRAINT``)
#   whose refusal of a racing write becomes the same ``ValidationError``, never a server error.
#   Nothing renames a user: the username is the identity the audit trail names.

import secrets  # noqa: E402
import string  # noqa: E402
from datetime import datetime, timedelta  # noqa: E402
from pathlib import Path  # noqa: E402

from django.contrib.sessions.models import Session  # noqa: E402
from django.db.models import (  # noqa: E402
    CharField,
    Exists,
    F,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
)
from django.db.models.functions import Cast, Coalesce  # noqa: E402
from django.utils import timezone  # noqa: E402

from portal.audit.models import AuditEvent  # noqa: E402

from .phones import mask_phone  # noqa: E402
from .roles import Perm, Role  # noqa: E402

INITIAL_PASSWORD_LENGTH = 16

# The roles an administrator role may grant; None: any role valid for the target organisation.
GRANTABLE_ROLES: dict[str, frozenset[str] | None] = {
    Role.PLATFORM_ADMIN: None,
    Role.ACQUIRER_ADMIN: frozenset({Role.ACQUIRER_ADMIN, Role.ACQUIRER_REVIEWER, Role.AUDITOR}),
    Role.MERCHANT_ADMIN: frozenset({Role.MERCHANT_ADMIN, Role.MERCHANT_OPERATOR, Role.MERCHANT_REVIEWER, Role.AUDITOR}),
}


class PasswordDelivery:
    SHOW = "show"
    SMS = "sms"


def users_manageable_by(actor) -> QuerySet:
    """The users ``actor`` may list and manage: everyone for a platform administrator, the
    actor's own organisation for an acquirer or merchant administrator, nobody otherwise.

    Always a subset of ``User.objects.visible_to(actor)``.
    """
    qs = User.objects.visible_to(actor)
    if not getattr(actor, "is_authenticated", False) or not actor.has_portal_perm(Perm.USERS_MANAGE):
        return qs.none()
    if actor.has_role(Role.PLATFORM_ADMIN):
        return qs
    if actor.has_role(Role.ACQUIRER_ADMIN) or actor.has_role(Role.MERCHANT_ADMIN):
        return qs.filter(organisation_id=actor.organisation_id)
    return qs.none()


def organisations_manageable_by(actor) -> QuerySet:
    """The organisations in which ``actor`` may create users."""
    qs = Organisation.objects.visible_to(actor)
    if not getattr(actor, "is_authenticated", False) or not actor.has_portal_perm(Perm.USERS_MANAGE):
        return qs.none()
    if actor.has_role(Role.PLATFORM_ADMIN):
        return qs
    if actor.has_role(Role.ACQUIRER_ADMIN) or actor.has_role(Role.MERCHANT_ADMIN):
        return qs.filter(pk=actor.organisation_id)
    return qs.none()


def with_lock_state(qs: QuerySet) -> QuerySet:
    """Annotate ``recent_failures``: django-axes failures of the username within the cool-off.

    A user is locked when ``recent_failures >= AXES_FAILURE_LIMIT`` (axes locks by username).
    """
    from axes.models import AccessAttempt

    threshold = timezone.now() - settings.AXES_COOLOFF_TIME
    failures = (
        AccessAttempt.objects.filter(username=OuterRef("username"), attempt_time__gte=threshold)
        .order_by()
        .values("username")
        .annotate(total=Sum("failures_since_start"))
        .values("total")
    )
    return qs.annotate(recent_failures=Coalesce(Subquery(failures, output_field=IntegerField()), Value(0)))


def user_is_locked(user: User) -> bool:
    """Whether django-axes currently locks ``user``'s username out."""
    failures = getattr(user, "recent_failures", None)
    if failures is None:
        failures = with_lock_state(User.objects.filter(pk=user.pk)).values_list("recent_failures", flat=True)[0]
    return failures >= settings.AXES_FAILURE_LIMIT


def grantable_roles(actor, organisation: Organisation) -> frozenset[str]:
    """The roles ``actor`` may grant to a user of ``organisation`` (empty when out of scope)."""
    if not organisations_manageable_by(actor).filter(pk=organisation.pk).exists():
        return frozenset()
    valid = ROLES_BY_ORG_KIND[organisation.kind]
    granted: set[str] = set()
    for role in actor.role_codes:
        if role not in GRANTABLE_ROLES:
            continue
        allowed = GRANTABLE_ROLES[role]
        granted |= valid if allowed is None else (allowed & valid)
    if not actor.has_role(Role.PLATFORM_ADMIN):
        granted.discard(Role.PLATFORM_ADMIN)
    return frozenset(granted)


def _check_roles(actor, organisation: Organisation, roles: Iterable[str], *, changed: Iterable[str]) -> list[str]:
    """Validate ``roles`` for ``organisation`` and that ``actor`` may grant or revoke ``changed``."""
    roles = validate_roles_for(organisation, roles)
    if not roles:
        raise ValidationError({"roles": _("Choose at least one role.")})
    allowed = grantable_roles(actor, organisation)
    refused = sorted(set(changed) - allowed)
    if refused:
        labels = ", ".join(str(Role(r).label) if r in Role.values else r for r in refused)
        raise ValidationError({"roles": _("You may not grant or remove these roles: %(roles)s") % {"roles": labels}})
    return roles


def _ensure_manageable(actor, user: User) -> None:
    if not users_manageable_by(actor).filter(pk=user.pk).exists():
        raise User.DoesNotExist("Not a user this actor manages.")


def _ensure_not_self(actor, user: User, message: str) -> None:
    if actor.pk == user.pk:
        raise ValidationError(message)


def generate_initial_password(length: int = INITIAL_PASSWORD_LENGTH) -> str:
    """A random password of letters and digits (at least one of each), from ``secrets``."""
    alphabet = string.ascii_letters + string.digits
    while True:
        password = "".join(secrets.choice(alphabet) for _i in range(length))
        if any(c.isalpha() for c in password) and any(c.isdigit() for c in password):
            return password


GENERATED_PASSWORD_ATTEMPTS = 20


def _generate_password_for(user: User) -> str:
    """A generated password that every configured validator accepts for ``user``.

    A random password can, very rarely, contain a context word (a part of the username such as
    "wang", a product word such as "portal") and be refused by the context-word rule: draw again. The
    history is left out here (a fresh random password is no earlier one; ``user_set_password`` checks it).
    """
    from django.contrib.auth.password_validation import get_default_password_validators

    from .validators import PasswordHistoryValidator

    validators = [v for v in get_default_password_validators() if not isinstance(v, PasswordHistoryValidator)]
    password = ""
    for _attempt in range(GENERATED_PASSWORD_ATTEMPTS):
        password = generate_initial_password()
        try:
            validate_password(password, user, password_validators=validators)
        except ValidationError:
            continue
        return password
    return password  # a rule no random password meets: the caller's validation says which


def _deliver_password(*, user: User, password: str, delivery: str, reset: bool) -> str | None:
    """Send the password by SMS (after commit) and return None, or return it to be shown once."""
    if delivery != PasswordDelivery.SMS:
        return password
    if not user.phone:
        raise ValidationError({"delivery": _("Enter a mobile phone number to send the password by SMS.")})
    from django.utils.translation import override

    from .sms import sms_send

    # In the recipient's language, not the administrator's.
    with override(user.language or settings.LANGUAGE_CODE):
        if reset:
            text = _(
                "Your merchant portal password was reset. User %(username)s, temporary password "
                "%(password)s. Change it when you sign in."
            )
        else:
            text = _(
                "Your merchant portal account %(username)s was created. Temporary password "
                "%(password)s. Change it when you sign in."
            )
    sms_send(
        phone=user.phone, text=text % {"username": user.username, "password": password}, purpose="initial_password"
    )
    return None


def user_create_managed(
    *,
    actor: User,
    organisation: Organisation,
    username: str,
    first_name: str = "",
    last_name: str = "",
    email: str = "",
    phone: str = "",
    roles: Iterable[str],
    delivery: str = PasswordDelivery.SHOW,
) -> tuple[User, str | None]:
    """An administrator creates a user with a generated initial password that must be changed.

    The phone is stored unverified: the user's first sign-in code confirms it (security check A8).
    Returns the user and the initial password to show once (None when it went out by SMS).
    Enforces the management rule above; audited once as ``user.create`` (through ``user_create``).
    """
    if not organisations_manageable_by(actor).filter(pk=organisation.pk).exists():
        raise Organisation.DoesNotExist("Not an organisation this actor manages.")
    roles = _check_roles(actor, organisation, roles, changed=roles)
    if delivery == PasswordDelivery.SMS and not phone:
        raise ValidationError({"delivery": _("Enter a mobile phone number to send the password by SMS.")})
    password = _generate_password_for(
        User(username=username, organisation=organisation, first_name=first_name, last_name=last_name, email=email)
    )
    with transaction.atomic():
        user = user_create(
            actor=actor,
            organisation=organisation,
            username=username,
            raw_password=password,
            first_name=first_name,
            last_name=last_name,
            email=email,
            phone=phone,
            phone_verified=False,
            roles=roles,
            must_change_password=True,
        )
        shown = _deliver_password(user=user, password=password, delivery=delivery, reset=False)
    return user, shown


def user_update(*, actor: User, user: User, first_name: str, last_name: str, phone: str, roles: Iterable[str]) -> User:
    """Change a user's name, phone and roles; audited as ``user.update`` with before/after.

    Nobody changes their own roles. A new phone set by an administrator is stored unverified
    (canonical form): the user's sign-in codes go to it, the first right one confirms it, and until
    then it is no step-up factor (security check A8). A code already sent to the old phone no longer
    signs in. The username does not change.
    """
    _ensure_manageable(actor, user)
    before_roles = sorted(user.role_assignments.values_list("role", flat=True))
    roles = sorted(set(roles))
    added, removed = set(roles) - set(before_roles), set(before_roles) - set(roles)
    if (added or removed) and actor.pk == user.pk:
        raise ValidationError({"roles": _("You cannot change your own roles.")})
    roles = _check_roles(actor, user.organisation, roles, changed=added | removed)
    before = {
        "first_name": user.first_name,
        "last_name": user.last_name,
        "phone": mask_phone(user.phone),
        "roles": before_roles,
    }
    phone = normalise_phone(phone)
    phone_changed = phone != normalise_phone(user.phone)  # the same number in another form is no change
    user.first_name, user.last_name, user.phone = first_name, last_name, phone
    if phone_changed:
        user.phone_verified = False
    _clean_user(user, check_username=False, check_phone=phone_changed)
    try:
        with transaction.atomic():
            user.save(update_fields=["first_name", "last_name", "phone", "phone_verified"])
            if removed:
                user.role_assignments.filter(role__in=removed).delete()
            if added:
                RoleAssignment.objects.bulk_create(
                    [RoleAssignment(user=user, role=r, granted_by=actor) for r in sorted(added)]
                )
            if phone_changed and phone:
                from .models import SMSDevice

                # A code pending for the old phone proves nothing about the new one: it no longer signs in.
                SMSDevice.objects.filter(user=user, purpose="login").update(phone=phone, token=None)
            after = {"first_name": first_name, "last_name": last_name, "phone": mask_phone(phone), "roles": roles}
            details = {"username": user.username, "before": before, "after": after}
            if phone_changed:
                details["phone_set_by_admin"] = bool(phone)
                details["phone_verified"] = False
            audit_record(action="user.update", actor=actor, organisation=user.organisation, obj=user, details=details)
    except IntegrityError as exc:
        if not is_phone_constraint_violation(exc):
            raise
        raise ValidationError({"phone": [phone_in_use_error()]}) from exc
    user.__dict__.pop("_role_codes", None)
    return user


def _end_sessions(user_ids: Iterable[int]) -> None:
    """Delete the users' stored sessions (the epoch bump already makes them unusable)."""
    wanted = {str(pk) for pk in user_ids}
    if not wanted:
        return
    doomed = []
    for session in Session.objects.filter(expire_date__gt=timezone.now()).iterator():
        try:
            data = session.get_decoded()
        except Exception:  # a session that cannot be decoded is unusable anyway
            continue
        if str(data.get("_auth_user_id")) in wanted:
            doomed.append(session.pk)
    if doomed:
        Session.objects.filter(pk__in=doomed).delete()


def _disable(*, actor: User | None, user: User, guard: Q | None = None, details: dict | None = None) -> bool:
    """Compare-and-set ``user`` (still active, and still matching ``guard``) to disabled, move the
    session epoch on and audit ``user.disable``, in the caller's transaction. False: nothing changed.

    The epoch bump ends every session at once (see User.get_session_auth_hash); the stored
    sessions are deleted by the caller after commit (``_end_sessions``).
    """
    candidates = User.objects.filter(pk=user.pk, is_active=True)
    if guard is not None:
        candidates = candidates.filter(guard)
    if not candidates.update(is_active=False, session_epoch=F("session_epoch") + 1):
        return False
    audit_record(
        action="user.disable",
        actor=actor,
        organisation=user.organisation,
        obj=user,
        details={"username": user.username, **(details or {})},
    )
    return True


def user_disable(*, actor: User, user: User) -> User:
    """Disable a user and end their sessions at once; audited as ``user.disable``. Not oneself."""
    _ensure_manageable(actor, user)
    _ensure_not_self(actor, user, _("You cannot disable your own account."))
    with transaction.atomic():
        if not _disable(actor=actor, user=user):
            raise ValidationError(_("This user is already disabled."))
        user_id = user.pk
        transaction.on_commit(lambda: _end_sessions([user_id]))
    user.refresh_from_db(fields=["is_active", "session_epoch"])
    return user


INACTIVITY_REASON = "inactivity"


def _inactive_guard(cutoff: datetime) -> Q:
    """Users whose last activity is before ``cutoff``.

    Activity is the last complete sign-in (``last_login``), or the account's creation
    (``date_joined``) when it never signed in, or the last re-enabling by an administrator
    (a ``user.enable`` audit event): an account just re-enabled gets a full period to sign in.
    """
    reenabled = AuditEvent.objects.filter(
        action="user.enable",
        object_type=User._meta.label_lower,
        object_id=Cast(OuterRef("pk"), CharField()),
        occurred_at__gte=cutoff,
    )
    idle = Q(last_login__lt=cutoff) | Q(last_login__isnull=True, date_joined__lt=cutoff)
    return idle & ~Exists(reenabled)


def users_disable_inactive(*, now: datetime | None = None) -> int:
    """Disable every active account without activity for more than ``ACCOUNT_INACTIVE_DAYS`` days
    (PCI DSS 8.2.6); return how many. Run daily by the ``accounts.disable_inactive_users`` job.

    Activity: see ``_inactive_guard``. Superusers and staff are no exception (the flags grant
    nothing in the portal, and an unused administrator account is the one most worth closing).
    Each account is disabled in its own transaction with a compare-and-set (a sign-in racing the
    job wins) and one ``user.disable`` audit event (no actor; details: reason ``inactivity``, the
    last sign-in or, never signed in, the creation as ``last_activity``, and ``limit_days``); its
    sessions end at once (session epoch) and are deleted after commit. Running it twice changes nothing.
    """
    now = now or timezone.now()
    days = settings.ACCOUNT_INACTIVE_DAYS
    cutoff = now - timedelta(days=days)
    guard = _inactive_guard(cutoff)
    disabled: list[int] = []
    for user in User.objects.filter(guard, is_active=True).select_related("organisation").order_by("pk"):
        last_activity = user.last_login or user.date_joined
        details = {"reason": INACTIVITY_REASON, "last_activity": last_activity.isoformat(), "limit_days": days}
        with transaction.atomic():
            if _disable(actor=None, user=user, guard=guard, details=details):
                disabled.append(user.pk)
    if disabled:
        transaction.on_commit(lambda: _end_sessions(disabled))
    return len(disabled)


def user_enable(*, actor: User, user: User) -> User:
    """Enable a disabled user; audited as ``user.enable``.

    Refused while another active user has this user's verified phone (one SMS factor per person),
    also when that user got it between the check and the write (the database constraint).
    """
    _ensure_manageable(actor, user)
    if user.phone_verified and phone_in_use_by_another(user.phone, user=user):
        raise _phone_shared_on_enable_error()
    try:
        with transaction.atomic():
            if not User.objects.filter(pk=user.pk, is_active=False).update(is_active=True):
                raise ValidationError(_("This user is already enabled."))
            audit_record(
                action="user.enable",
                actor=actor,
                organisation=user.organisation,
                obj=user,
                details={"username": user.username},
            )
    except IntegrityError as exc:
        if not is_phone_constraint_violation(exc):
            raise
        raise _phone_shared_on_enable_error() from exc
    user.refresh_from_db(fields=["is_active"])
    return user


def _phone_shared_on_enable_error() -> ValidationError:
    return ValidationError(
        _("Another active user has this user's mobile phone number: change the phone number of one of them first."),
        code="phone_in_use",
    )


def user_unlock(*, actor: User, user: User) -> int:
    """Clear django-axes' failed attempts for the username; audited as ``user.unlock``.

    Returns the number of attempt records removed.
    """
    from axes.utils import reset

    _ensure_manageable(actor, user)
    with transaction.atomic():
        # With axes' database handler the reset runs in this transaction, with the audit event.
        removed = reset(username=user.username)
        audit_record(
            action="user.unlock",
            actor=actor,
            organisation=user.organisation,
            obj=user,
            details={"username": user.username, "attempts_cleared": removed},
        )
    return removed


def user_reset_password(*, actor: User, user: User, delivery: str = PasswordDelivery.SHOW) -> str | None:
    """Give a user a new random temporary password that must be changed at sign-in.

    Ends the user's sessions (the epoch moves on); audited as ``user.password_reset``.
    Returns the password to show once, or None when it went out by SMS.
    """
    _ensure_manageable(actor, user)
    if delivery == PasswordDelivery.SMS and not user.phone:
        raise ValidationError({"delivery": _("This user has no mobile phone number to send the password to.")})
    password = _generate_password_for(user)
    with transaction.atomic():
        user_set_password(actor=actor, user=user, raw_password=password, must_change=True, action="user.password_reset")
        shown = _deliver_password(user=user, password=password, delivery=delivery, reset=True)
    return shown


# --- Access review (PCI DSS 7.2.4, security check B7) ---

ACCESS_REVIEW_ACTION = "users.access_review"


def access_review_write(
    *,
    actor: User | None,
    organisation: Organisation | None,
    file_format: str,
    path: Path,
    content: bytes,
    user_count: int,
) -> AuditEvent:
    """Write the access review report ``content`` to a new file at ``path`` and audit it as
    ``users.access_review`` (organisation code or all, format, number of users, path, SHA-256).

    One transaction: the event is kept only when the file was written, and a file whose event
    could not be committed is removed. An existing file is never overwritten (``FileExistsError``):
    a report is evidence. ``actor`` None: the command line, recorded as ``command:access_review``.
    """
    import hashlib

    path = Path(path)
    created = False
    try:
        with transaction.atomic():
            event = audit_record(
                action=ACCESS_REVIEW_ACTION,
                actor=actor,
                actor_repr=None if actor is not None else "command:access_review",
                organisation=organisation,
                details={
                    "organisation": organisation.code if organisation is not None else "",
                    "format": file_format,
                    "users": user_count,
                    "path": str(path.resolve()),
                    "sha256": hashlib.sha256(content).hexdigest(),
                },
            )
            with path.open("xb") as out:
                created = True
                out.write(content)
    except BaseException:
        if created:
            path.unlink(missing_ok=True)
        raise
    return event
