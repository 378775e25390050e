"""Where the engine's ``otp_verified_at`` comes from in a web or API request."""

from __future__ import annotations

from portal.accounts.stepup import SESSION_OTP_VERIFIED_AT


def otp_verified_at(request) -> float | None:
    """When (epoch seconds) this session last confirmed a second-factor code, or None.

    Pass it to ``approval_decide(otp_verified_at=...)``; the service decides whether it is fresh.
    An API call first checks its ``otp_token`` with ``portal.accounts.stepup.verify_step_up_token``,
    which marks the session fresh.
    """
    session = getattr(request, "session", None)
    if session is None:
        return None
    value = session.get(SESSION_OTP_VERIFIED_AT)
    try:
        return float(value) if value else None
    except (TypeError, ValueError):
        return None
