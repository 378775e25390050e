"""Read-only user API: the same scoping (``user_list_queryset``) and FilterSet as the user list page."""

from __future__ import annotations

from rest_framework import viewsets

from ..filtersets import UserFilterSet, user_list_queryset
from ..roles import Perm
from .serializers import UserSerializer


class UserViewSet(viewsets.ReadOnlyModelViewSet):
    """Users the caller manages: everyone for the platform, the caller's own organisation otherwise.

    Another organisation's user is a 404. Filters: ``q``, ``role``, ``status``,
    ``last_login_from`` and ``last_login_to`` (Beijing dates).
    """

    serializer_class = UserSerializer
    filterset_class = UserFilterSet
    required_permission = Perm.USERS_VIEW

    def get_queryset(self):
        return user_list_queryset(self.request.user).order_by("username")
