"""Request-level glue of the second factor: the session's challenge nonce and the lockout counter.

django-axes only sees ``authenticate()``; wrong codes are fed into the same per-username counter
by sending Django's ``user_login_failed`` signal, so that password and code failures lock together.
"""

from __future__ import annotations

import secrets

from axes.handlers.proxy import AxesProxyHandler
from django.contrib.auth import logout
from django.contrib.auth.signals import user_login_failed

from . import auth_services
from .auth_services import METHOD_SMS, METHOD_TOTP, CodeCheck

SESSION_CHALLENGE = "portal_otp_challenge"


def session_challenge(request, *, fresh: bool = False) -> str:
    """The nonce that binds the codes sent to this session (a code from another session is refused)."""
    nonce = request.session.get(SESSION_CHALLENGE)
    if fresh or not nonce:
        nonce = secrets.token_urlsafe(32)
        request.session[SESSION_CHALLENGE] = nonce
    return nonce


def username_is_locked(request, username: str) -> bool:
    """Whether django-axes holds ``username`` locked (password and code failures together)."""
    return AxesProxyHandler.is_locked(request, {"username": username})


def count_code_failure(request, user) -> bool:
    """Count a wrong code toward the user's lockout; True when the username is now locked."""
    user_login_failed.send(sender=__name__, credentials={"username": user.get_username()}, request=request)
    locked = bool(getattr(request, "axes_locked_out", False)) or username_is_locked(request, user.get_username())
    # The caller answers the lockout itself; axes' middleware must not replace the response.
    request.axes_locked_out = False
    return locked


def default_method(user) -> str:
    return METHOD_TOTP if auth_services.confirmed_totp_device(user) else METHOD_SMS


def check_step_up_code(request, user, token: str, method: str | None) -> CodeCheck:
    """Verify a step-up code (SMS sent for step-up in this session, or TOTP) and mark the session fresh.

    ``method`` None tries the authenticator app when the user has one, else SMS.
    A wrong code counts toward the lockout.
    """
    from .stepup import mark_second_factor_confirmed

    method = method or default_method(user)
    check = auth_services.auth_step_up_verify(
        user=user, method=method, token=token, challenge=session_challenge(request)
    )
    if check.ok:
        mark_second_factor_confirmed(request)
    elif not check.throttled and count_code_failure(request, user):
        logout(request)
    return check
