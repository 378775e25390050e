"""Session lifetime, the user's language, and the two-factor gate in front of every page."""

from __future__ import annotations

import time

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.http import JsonResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext as _

SESSION_AUTH_AT = "portal_auth_at"
SESSION_LAST_ACTIVITY = "portal_last_activity"
# The activity timestamp is written at most this often (one session UPDATE a minute instead of one a
# request). The idle check reads the stored value, so a session never lives longer idle than
# SESSION_IDLE_SECONDS; it may end up to this much sooner.
ACTIVITY_WRITE_SECONDS = 60


def _is_api(request) -> bool:
    return request.path_info.startswith("/api/")


class SessionLifetimeMiddleware:
    """Ends a session after 15 minutes idle or 12 hours in all (PCI 8.2.8, ASVS 7.3), auditing it."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            now = time.time()
            started = request.session.get(SESSION_AUTH_AT, now)
            last = request.session.get(SESSION_LAST_ACTIVITY, now)
            reason = None
            if now - started > settings.SESSION_ABSOLUTE_SECONDS:
                reason = "absolute"
            elif now - last > settings.SESSION_IDLE_SECONDS:
                reason = "idle"
            if reason:
                from portal.audit.services import audit_record

                audit_record(action="auth.session_expired", actor=user, details={"reason": reason})
                logout(request)
                if _is_api(request):
                    return JsonResponse(
                        {"error": {"code": "not_authenticated", "message": _("Your session has expired.")}},
                        status=401,
                    )
                messages.info(request, _("Your session has expired. Please sign in again."))
                return redirect(settings.LOGIN_URL)
            if SESSION_AUTH_AT not in request.session:
                request.session[SESSION_AUTH_AT] = started
            if SESSION_LAST_ACTIVITY not in request.session or now - last >= ACTIVITY_WRITE_SECONDS:
                request.session[SESSION_LAST_ACTIVITY] = now
        return self.get_response(request)


class UserLanguageMiddleware:
    """A signed-in user's chosen language wins over the browser's."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated and user.language:
            translation.activate(user.language)
            request.LANGUAGE_CODE = translation.get_language()
        response = self.get_response(request)
        response.headers.setdefault("Content-Language", translation.get_language())
        return response


class TwoFactorRequiredMiddleware:
    """No page but the explicitly public ones is reachable without both factors.

    Anonymous → the login page (401 for the API); password only → the second-factor page;
    both factors but a password that must be changed → the password-change page.
    Views opt out with ``public_view`` or ``password_step_view`` (see ``portal.core.mixins``).
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        view = getattr(view_func, "view_class", None) or view_func
        if getattr(view_func, "portal_public", False) or getattr(view, "portal_public", False):
            return None
        user = request.user
        if not user.is_authenticated:
            if _is_api(request):
                return JsonResponse(
                    {
                        "error": {
                            "code": "not_authenticated",
                            "message": _("Sign in with your password and second factor."),
                        }
                    },
                    status=401,
                )
            return redirect(f"{reverse(settings.LOGIN_URL)}?next={request.get_full_path()}")
        if not user.is_verified():
            if getattr(view_func, "portal_password_step", False) or getattr(view, "portal_password_step", False):
                return None
            if _is_api(request):
                return JsonResponse(
                    {"error": {"code": "not_authenticated", "message": _("Confirm your second factor first.")}},
                    status=401,
                )
            return redirect("accounts:verify")
        if user.must_change_password and not getattr(view, "portal_password_change", False):
            if getattr(view_func, "portal_password_step", False) or getattr(view, "portal_password_step", False):
                return None
            if _is_api(request):
                return JsonResponse(
                    {"error": {"code": "password_change_required", "message": _("Change your password first.")}},
                    status=403,
                )
            return redirect("accounts:password_change")
        return None
