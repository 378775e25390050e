"""REST API foundations: authentication with both factors, permissions and paging."""

from rest_framework import exceptions, pagination, permissions


class IsFullyAuthenticated(permissions.BasePermission):
    """Signed in with password and second factor, active, and holding the view's permission.

    A view names its permission in ``required_permission``; a view without one is refused
    (deny by default), unless it sets ``any_signed_in_user = True``.
    """

    message = "Sign in with your password and second factor."

    def has_permission(self, request, view) -> bool:
        user = request.user
        if not (user and user.is_authenticated and user.is_active and user.is_verified()):
            raise exceptions.NotAuthenticated(self.message)
        if getattr(user, "must_change_password", False):
            raise exceptions.PermissionDenied("Change your password before using the API.")
        perm = getattr(view, "required_permission", None)
        if perm is None:
            return bool(getattr(view, "any_signed_in_user", False))
        return user.has_portal_perm(perm)


class PortalPagination(pagination.PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500
