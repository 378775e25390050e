"""The "Waiting for my review" count in the navigation."""

from .selectors import approvals_waiting_count, is_reviewer


def approvals(request) -> dict:
    """``approvals_waiting_count``: an int for a fully signed-in reviewer, else None (no query)."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated or not user.is_verified() or not is_reviewer(user):
        return {"approvals_waiting_count": None}
    # Memoised on the request: nested RequestContexts (django-tables2) run processors again.
    if not hasattr(request, "_approvals_waiting_count"):
        request._approvals_waiting_count = approvals_waiting_count(user)
    return {"approvals_waiting_count": request._approvals_waiting_count}
