"""View mixins: deny by default.

Every portal view says which permission it needs (``permission_required``), or says
explicitly that any signed-in user may open it (``permission_required = None`` together
with ``any_signed_in_user = True``). The resolver-walk test fails on a view that does neither.
Sign-in with both factors is enforced before the view by ``TwoFactorRequiredMiddleware``.
"""

from django.core.exceptions import ImproperlyConfigured, PermissionDenied


class PortalPermissionMixin:
    permission_required: str | None = None
    any_signed_in_user: bool = False

    def dispatch(self, request, *args, **kwargs):
        if self.permission_required is None and not self.any_signed_in_user:
            raise ImproperlyConfigured(f"{type(self).__name__} declares no permission.")
        if not request.user.is_authenticated or not request.user.is_verified():
            raise PermissionDenied
        if self.permission_required and not request.user.has_portal_perm(self.permission_required):
            raise PermissionDenied
        return super().dispatch(request, *args, **kwargs)


def public_view(view):
    """Mark a view reachable without signing in (login, health, language switch)."""
    view.portal_public = True
    return view


def password_step_view(view):
    """Mark a view reachable after the password step, before the second factor."""
    view.portal_password_step = True
    return view
