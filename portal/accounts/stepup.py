"""Step-up: sensitive actions demand a second-factor code confirmed within the last 5 minutes."""

from __future__ import annotations

import time

from django.conf import settings

SESSION_OTP_VERIFIED_AT = "portal_otp_verified_at"


def mark_second_factor_confirmed(request) -> None:
    """Record that the user just confirmed a second-factor code (login or step-up)."""
    request.session[SESSION_OTP_VERIFIED_AT] = time.time()


def step_up_is_fresh(request) -> bool:
    """Whether a second-factor code was confirmed in this session within STEP_UP_MAX_AGE_SECONDS."""
    confirmed = request.session.get(SESSION_OTP_VERIFIED_AT)
    return bool(confirmed) and time.time() - confirmed <= settings.STEP_UP_MAX_AGE_SECONDS
