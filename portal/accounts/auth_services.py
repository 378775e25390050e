"""Writes of the sign-in flow: codes sent and checked, logins recorded, phone and authenticator changes.

Kept apart from ``services.py`` (organisations and users) because it is its own subdomain. Every
function is one transaction with its audit event inside it; codes are checked under a row lock so
that a code is usable once even when two requests submit it at the same moment (django-otp's
``SideChannelDevice.verify_token`` takes no lock by itself).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone, translation
from django.utils.crypto import constant_time_compare
from django.utils.translation import gettext_lazy
from django_otp.models import Device
from django_otp.plugins.otp_totp.models import TOTPDevice

from portal.audit.alerts import sign_in_failure_alert_check
from portal.audit.models import AuditOutcome
from portal.audit.services import audit_record

from .models import SMSDevice, User
from .phones import mask_phone, normalise_phone
from .services import is_phone_constraint_violation, phone_in_use_by_another
from .sms import sms_send

PURPOSE_LOGIN = "login"
PURPOSE_STEP_UP = "step_up"
PURPOSE_PHONE_CHANGE = "phone_change"

METHOD_SMS = "sms"
METHOD_TOTP = "totp"

_SMS_TEXTS = {
    PURPOSE_LOGIN: gettext_lazy("Your portal sign-in code is %(code)s, valid for 5 minutes."),
    PURPOSE_STEP_UP: gettext_lazy("Your portal confirmation code is %(code)s, valid for 5 minutes."),
    PURPOSE_PHONE_CHANGE: gettext_lazy(
        "Your code to confirm this phone number for the portal is %(code)s, valid for 5 minutes."
    ),
}


class CodeCooldown(Exception):
    """A code was sent less than ``OTP_SMS_COOLDOWN_DURATION`` seconds ago."""

    def __init__(self, wait_seconds: int):
        super().__init__(wait_seconds)
        self.wait_seconds = wait_seconds


@dataclass(frozen=True)
class CodeCheck:
    """The outcome of checking a code. ``throttled``: the code was not even compared (back-off)."""

    ok: bool
    device: Device | None = None
    throttled: bool = False
    wait_seconds: int = 0
    # The code was right, but the phone it went to is another active user's verified phone now
    # (a phone change, or the first sign-in that would confirm an administrator's phone): refused.
    phone_in_use: bool = False


def challenge_hash(nonce: str) -> str:
    """What a device stores of the session's challenge nonce (never the nonce itself)."""
    return hashlib.sha256(f"portal-otp-challenge:{nonce}".encode()).hexdigest()


def sms_factor_phone(user: User) -> str:
    """The phone that may confirm a step-up (approvals, sensitive settings): a verified phone only,
    never one an administrator typed in and nobody confirmed yet (security check A8); "" if none."""
    return user.phone if user.phone and user.phone_verified else ""


def login_sms_device(user: User) -> SMSDevice | None:
    """The user's sign-in SMS device, created on first use; None without a phone.

    Sign-in codes go to the user's phone whether it is verified or not: a phone an administrator
    typed in is an enrolment phone, and the first right sign-in code confirms it (``auth_otp_verify``).
    When the phone changed since the last code, that code is dropped: it went to the old phone.
    """
    if not user.phone:
        return None
    device, created = SMSDevice.objects.get_or_create(
        user=user, purpose=PURPOSE_LOGIN, defaults={"name": "sms", "phone": user.phone, "confirmed": True}
    )
    if not created and (device.phone != user.phone or not device.confirmed):
        if device.phone != user.phone:
            device.token = None
        device.phone = user.phone
        device.confirmed = True
        device.save(update_fields=["phone", "confirmed", "token"])
    return device


def confirmed_totp_device(user: User) -> TOTPDevice | None:
    return TOTPDevice.objects.filter(user=user, confirmed=True).order_by("-id").first()


def sms_code_send(*, user: User, purpose: str, phone: str, challenge: str) -> SMSDevice:
    """Generate a 6-digit code valid for 5 minutes, bind it to ``challenge`` and queue the SMS.

    A new code replaces (and so invalidates) the previous one of the same purpose.
    Raises ``CodeCooldown`` within 60 seconds of the previous code and ``SmsDailyCapExceeded``
    when the phone had its daily number of messages (nothing changes then). A step-up code goes to
    a verified phone only (``sms_factor_phone``); ``ValueError`` otherwise (the callers check first).
    ``phone`` is the user's (canonical) phone, or the canonical new phone of a phone change.
    """
    if purpose == PURPOSE_STEP_UP and (not phone or phone != sms_factor_phone(user)):
        raise ValueError("A step-up code goes to the user's verified phone only.")
    with transaction.atomic():
        device, _created = SMSDevice.objects.get_or_create(
            user=user,
            purpose=purpose,
            defaults={"name": f"sms-{purpose}", "phone": phone, "confirmed": purpose == PURPOSE_LOGIN},
        )
        device = SMSDevice.objects.select_for_update().get(pk=device.pk)
        allowed, data = device.generate_is_allowed()
        if not allowed:
            remaining = (data["next_generation_at"] - timezone.now()).total_seconds()
            raise CodeCooldown(max(1, math.ceil(remaining)))
        device.phone = phone
        device.generate_token(length=6, valid_secs=settings.OTP_SMS_TOKEN_VALIDITY, commit=False)
        device.challenge = challenge_hash(challenge)
        device.cooldown_set(commit=False)
        device.save()
        with translation.override(user.language or translation.get_language() or settings.LANGUAGE_CODE):
            text = str(_SMS_TEXTS[purpose]) % {"code": device.token}
        sms_send(phone=phone, text=text, purpose=f"otp_{purpose}")
    return device


def _check_sms_locked(device: SMSDevice, token: str, challenge: str) -> CodeCheck:
    """Compare a code with the locked ``device``: same session challenge, not expired, not used."""
    allowed, data = device.verify_is_allowed()
    if not allowed:
        wait = 0
        if device.throttling_failure_timestamp is not None:
            delay = device.get_throttle_factor() * (2 ** (device.throttling_failure_count - 1))
            wait = max(1, math.ceil(delay - (timezone.now() - device.throttling_failure_timestamp).total_seconds()))
        return CodeCheck(ok=False, device=device, throttled=True, wait_seconds=wait)
    now = timezone.now()
    if (
        device.token
        and device.challenge
        and constant_time_compare(device.challenge, challenge_hash(challenge))
        and constant_time_compare(device.token, token)
        and now < device.valid_until
    ):
        device.token = None
        device.valid_until = now
        device.throttling_failure_timestamp = None
        device.throttling_failure_count = 0
        device.save(update_fields=["token", "valid_until", "throttling_failure_timestamp", "throttling_failure_count"])
        return CodeCheck(ok=True, device=device)
    device.throttle_increment(commit=True)
    return CodeCheck(ok=False, device=device)


def _check_totp_locked(device: TOTPDevice, token: str) -> CodeCheck:
    """django-otp's TOTP check: throttled, and a time step is never accepted twice (``last_t``)."""
    allowed, _data = device.verify_is_allowed()
    if not allowed:
        return CodeCheck(ok=False, device=device, throttled=True)
    return CodeCheck(ok=bool(device.verify_token(token)), device=device)


def _normalise_token(token: str) -> str:
    return "".join((token or "").split())


def _check_code(*, user: User, method: str, purpose: str, token: str, challenge: str) -> CodeCheck:
    """Check ``token`` with the user's device for ``method`` under a row lock (inside a transaction)."""
    token = _normalise_token(token)
    if not token.isdigit() or len(token) != 6:
        token = "-"  # compared anyway, so that the failure is counted like any other
    if method == METHOD_TOTP:
        device = TOTPDevice.objects.select_for_update().filter(user=user, confirmed=True).order_by("-id").first()
        if device is None:
            return CodeCheck(ok=False)
        return _check_totp_locked(device, token)
    device = SMSDevice.objects.select_for_update().filter(user=user, purpose=purpose).first()
    if device is None:
        return CodeCheck(ok=False)
    return _check_sms_locked(device, token, challenge)


def _audit_code_failure(*, user: User, method: str, purpose: str, check: CodeCheck) -> None:
    failure = audit_record(
        action="auth.otp_failure",
        actor=user,
        outcome=AuditOutcome.FAILURE,
        details={"method": method, "purpose": purpose, "throttled": check.throttled},
    )
    sign_in_failure_alert_check(failure=failure)


def auth_password_step_success(*, user: User, previous_last_login: datetime | None) -> None:
    """The password step passed: audit it. ``last_login`` keeps meaning the last *complete* sign-in,
    so Django's update at ``login()`` is undone until the second factor succeeds."""
    with transaction.atomic():
        User.objects.filter(pk=user.pk).update(last_login=previous_last_login)
        user.last_login = previous_last_login
        audit_record(action="auth.login_success", actor=user, details={"step": "password"})


def auth_login_failure(*, username: str) -> None:
    """A failed password step (unknown user, wrong password, inactive or locked account alike)."""
    with transaction.atomic():
        failure = audit_record(
            action="auth.login_failure",
            actor=None,
            actor_repr=username[:150],
            outcome=AuditOutcome.FAILURE,
            details={"step": "password"},
        )
        sign_in_failure_alert_check(failure=failure)


def _confirm_enrolment_phone(*, user: User, locked: User) -> bool:
    """The first right sign-in code sent to a phone not verified yet confirms it (security check A8):
    ``phone_verified`` True, audited ``auth.phone_verified``, in the caller's transaction.

    False, changing nothing, while another active user has the phone as their verified phone
    (security check B1), also when that user's write races this one to the database constraint.
    """
    if phone_in_use_by_another(locked.phone, user=locked):
        return False
    try:
        with transaction.atomic():
            User.objects.filter(pk=locked.pk).update(phone_verified=True)
            audit_record(
                action="auth.phone_verified",
                actor=user,
                obj=user,
                details={"phone": mask_phone(locked.phone), "method": METHOD_SMS, "purpose": PURPOSE_LOGIN},
            )
    except IntegrityError as exc:
        if not is_phone_constraint_violation(exc):
            raise
        return False
    user.phone_verified = True
    return True


def auth_otp_verify(*, user: User, method: str, token: str, challenge: str, ip: str | None) -> CodeCheck:
    """The sign-in second factor. Success records the sign-in (the previous one is kept for the home
    page) and audits ``auth.otp_success``; a wrong code audits ``auth.otp_failure``.

    A right SMS code sent to a phone not verified yet (typed in by an administrator) also confirms
    the phone (``auth.phone_verified``), in the same transaction. When another active user has that
    phone verified the code is refused (``phone_in_use``, audited ``auth.phone_verify_refused``): no
    sign-in, the phone stays unverified, and no failure is counted (the code was right; an
    administrator has to sort the phones out).
    """
    with transaction.atomic():
        check = _check_code(user=user, method=method, purpose=PURPOSE_LOGIN, token=token, challenge=challenge)
        if not check.ok:
            _audit_code_failure(user=user, method=method, purpose=PURPOSE_LOGIN, check=check)
            return check
        locked = User.objects.select_for_update().get(pk=user.pk)
        if method == METHOD_SMS and not locked.phone_verified:
            if check.device.phone != locked.phone:
                # Sent before the phone changed (a change drops the pending code; this is the safety net):
                # it proves nothing about the phone it would confirm.
                check = CodeCheck(ok=False, device=check.device)
                _audit_code_failure(user=user, method=method, purpose=PURPOSE_LOGIN, check=check)
                return check
            if not _confirm_enrolment_phone(user=user, locked=locked):
                # Not a wrong code (nothing counts towards the lockout), but a refused sign-in the
                # administrators must see: two people claim one phone.
                audit_record(
                    action="auth.phone_verify_refused",
                    actor=user,
                    obj=user,
                    outcome=AuditOutcome.FAILURE,
                    details={"phone": mask_phone(locked.phone), "reason": "phone_in_use", "purpose": PURPOSE_LOGIN},
                )
                return CodeCheck(ok=False, device=check.device, phone_in_use=True)
        user.previous_login_at = locked.last_login
        user.previous_login_ip = locked.last_login_ip
        user.last_login = timezone.now()
        user.last_login_ip = ip
        user.save(update_fields=["previous_login_at", "previous_login_ip", "last_login", "last_login_ip"])
        audit_record(action="auth.otp_success", actor=user, details={"method": method})
    return check


def auth_step_up_verify(*, user: User, method: str, token: str, challenge: str) -> CodeCheck:
    """A step-up confirmation: ``auth.step_up`` on success, ``auth.otp_failure`` otherwise.

    By SMS only with a verified phone (``sms_factor_phone``; security check A8): a code that went
    to an unconfirmed phone, or to a phone that is no longer the user's verified one, is refused.
    """
    with transaction.atomic():
        if method == METHOD_SMS and not sms_factor_phone(user):
            check = CodeCheck(ok=False)
        else:
            check = _check_code(user=user, method=method, purpose=PURPOSE_STEP_UP, token=token, challenge=challenge)
            if check.ok and method == METHOD_SMS and check.device.phone != sms_factor_phone(user):
                check = CodeCheck(ok=False, device=check.device)
        if check.ok:
            audit_record(action="auth.step_up", actor=user, details={"method": method})
        else:
            _audit_code_failure(user=user, method=method, purpose=PURPOSE_STEP_UP, check=check)
    return check


def auth_logout(*, user: User) -> None:
    with transaction.atomic():
        audit_record(action="auth.logout", actor=user)


def user_phone_change_confirm(*, actor: User, phone: str, token: str, challenge: str) -> CodeCheck:
    """Make ``phone`` (stored canonical) the user's verified phone once the code sent to it is confirmed.

    The sign-in SMS device follows the new phone. Audited as ``auth.phone_change``. Refused
    (``phone_in_use``, nothing changes) while another active user has the phone verified, also
    when that user's write races this one to the database constraint.
    """
    phone = normalise_phone(phone)
    with transaction.atomic():
        check = _check_code(
            user=actor, method=METHOD_SMS, purpose=PURPOSE_PHONE_CHANGE, token=token, challenge=challenge
        )
        if not check.ok or normalise_phone(check.device.phone) != phone:
            _audit_code_failure(user=actor, method=METHOD_SMS, purpose=PURPOSE_PHONE_CHANGE, check=check)
            return CodeCheck(ok=False, device=check.device, throttled=check.throttled, wait_seconds=check.wait_seconds)
        in_use = CodeCheck(ok=False, device=check.device, throttled=False, wait_seconds=0, phone_in_use=True)
        if phone_in_use_by_another(phone, user=actor):
            # Another account took it since the code was sent (the form refused it before): not this one's factor.
            return in_use
        old = actor.phone
        try:
            with transaction.atomic():
                User.objects.filter(pk=actor.pk).update(phone=phone, phone_verified=True)
                SMSDevice.objects.filter(user=actor, purpose=PURPOSE_LOGIN).update(phone=phone, confirmed=True)
                audit_record(
                    action="auth.phone_change",
                    actor=actor,
                    obj=actor,
                    details={"old_phone": mask_phone(old), "new_phone": mask_phone(phone)},
                )
        except IntegrityError as exc:
            if not is_phone_constraint_violation(exc):
                raise
            return in_use
        actor.phone, actor.phone_verified = phone, True
    return check


def totp_device_start(*, user: User) -> TOTPDevice:
    """A new, unconfirmed authenticator-app device (earlier unfinished enrolments are dropped)."""
    with transaction.atomic():
        TOTPDevice.objects.filter(user=user, confirmed=False).delete()
        return TOTPDevice.objects.create(user=user, name="authenticator", confirmed=False)


def totp_device_confirm(*, actor: User, device_id: int, token: str) -> CodeCheck:
    """Confirm an enrolment with a code from the app; it replaces any earlier authenticator app.

    Audited as ``auth.device_enrol``; a wrong code as ``auth.otp_failure``.
    """
    with transaction.atomic():
        device = TOTPDevice.objects.select_for_update().filter(pk=device_id, user=actor, confirmed=False).first()
        if device is None:
            return CodeCheck(ok=False)
        check = _check_totp_locked(device, _normalise_token(token))
        if not check.ok:
            _audit_code_failure(user=actor, method=METHOD_TOTP, purpose="totp_enrol", check=check)
            return check
        device.confirmed = True
        device.save(update_fields=["confirmed"])
        TOTPDevice.objects.filter(user=actor).exclude(pk=device.pk).delete()
        audit_record(action="auth.device_enrol", actor=actor, obj=device, details={"kind": "totp"})
    return check


def user_set_language(*, user: User, language: str) -> None:
    """Remember the user's interface language (it wins over the browser's)."""
    if user.language == language:
        return
    with transaction.atomic():
        user.language = language
        user.save(update_fields=["language"])
        audit_record(action="user.language_change", actor=user, obj=user, details={"language": language})
