"""Authentication backend: Django's model backend; permissions come from roles, never from flags."""

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.db.models import OuterRef, StringAgg, Subquery, Value


class PortalModelBackend(ModelBackend):
    """Password check against the user table. Inactive users cannot authenticate.

    Django's own permission system is not used for portal pages (see ``roles.py``);
    ``has_perm`` answers only for the Django admin, which requires the platform admin role.
    """

    def get_user(self, user_id):
        # The organisation and the roles are needed on every page (scoping, header, permissions):
        # fetch them with the user, in one statement.
        from .models import RoleAssignment

        user_model = get_user_model()
        roles = (
            RoleAssignment.objects.filter(user=OuterRef("pk"))
            .order_by()
            .values("user")
            .annotate(codes=StringAgg("role", delimiter=Value(",")))
            .values("codes")
        )
        try:
            user = (
                user_model._default_manager.select_related("organisation")
                .annotate(portal_role_list=Subquery(roles))
                .get(pk=user_id)
            )
        except user_model.DoesNotExist:
            return None
        user._role_codes = frozenset(filter(None, (user.portal_role_list or "").split(",")))
        return user if self.user_can_authenticate(user) else None

    def has_perm(self, user_obj, perm, obj=None) -> bool:
        return bool(user_obj.is_active and user_obj.has_role("platform_admin") and user_obj.is_staff)

    def has_module_perms(self, user_obj, app_label) -> bool:
        return self.has_perm(user_obj, app_label)
