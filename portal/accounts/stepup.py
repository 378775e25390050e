"""Step-up: sensitive actions demand a second-factor code confirmed within the last 5 minutes.

Views use ``StepUpRequiredMixin`` (after ``PortalPermissionMixin``, so that a missing permission
is a 403 before any step-up is asked for); APIs take a code in the request and call
``verify_step_up_token``.
"""

from __future__ import annotations

import time
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.translation import gettext as _

SESSION_OTP_VERIFIED_AT = "portal_otp_verified_at"


def mark_second_factor_confirmed(request) -> None:
    """Record that the user just confirmed a second-factor code (login or step-up)."""
    request.session[SESSION_OTP_VERIFIED_AT] = time.time()


def step_up_is_fresh(request) -> bool:
    """Whether a second-factor code was confirmed in this session within STEP_UP_MAX_AGE_SECONDS."""
    confirmed = request.session.get(SESSION_OTP_VERIFIED_AT)
    return bool(confirmed) and time.time() - confirmed <= settings.STEP_UP_MAX_AGE_SECONDS


def step_up_url(next_url: str) -> str:
    """The step-up page, coming back to ``next_url`` once a code is confirmed."""
    return f"{reverse('accounts:step_up')}?{urlencode({'next': next_url})}"


class StepUpRequiredMixin:
    """A class-based view that needs a second-factor code confirmed within the last 5 minutes.

    GET (or HEAD) without a fresh confirmation → the step-up page, coming back here afterwards.
    Any other method → the same redirect with the message "Confirm with a code first", and the
    view does not run (no side effect). Place it after ``PortalPermissionMixin``.
    """

    def dispatch(self, request, *args, **kwargs):
        user = request.user
        if user.is_authenticated and user.is_verified() and not step_up_is_fresh(request):
            if request.method not in ("GET", "HEAD"):
                messages.warning(request, _("Confirm with a code first."))
            return redirect(step_up_url(request.get_full_path()))
        return super().dispatch(request, *args, **kwargs)


def verify_step_up_token(request, user, token: str) -> bool:
    """Check a step-up code for an API call: an SMS code sent for step-up in this session, or a TOTP code.

    Success marks the session fresh (and is audited as ``auth.step_up``); a wrong code is audited as
    ``auth.otp_failure`` and counts toward the account lockout like a wrong sign-in code.
    """
    from .second_factor import check_step_up_code

    return check_step_up_code(request, user, token, method=None).ok
