"""Template context shared by every page: the navigation and the user's permissions."""

from django.conf import settings

from .navigation import navigation_for


def portal(request):
    user = getattr(request, "user", None)
    verified = bool(user is not None and user.is_authenticated and user.is_verified())
    return {
        "nav_sections": navigation_for(request) if verified else [],
        "portal_verified": verified,
        "portal_debug": settings.DEBUG,
        "portal_env": settings.PORTAL_ENV,
    }
