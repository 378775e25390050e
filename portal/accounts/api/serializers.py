"""Read-only representations of users for /api/v1/users/."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from ..models import User
from ..tables import user_status


class UserOrganisationSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    kind = serializers.CharField(read_only=True)
    code = serializers.CharField(read_only=True)
    name = serializers.CharField(source="display_name", read_only=True)


class UserSerializer(serializers.ModelSerializer):
    """A user as its administrator sees it: the phone masked, never a password or a code."""

    organisation = UserOrganisationSerializer(read_only=True)
    roles = serializers.SerializerMethodField()
    status = serializers.SerializerMethodField()
    phone = serializers.CharField(source="masked_phone", read_only=True)

    class Meta:
        model = User
        fields = [
            "id",
            "username",
            "first_name",
            "last_name",
            "organisation",
            "roles",
            "status",
            "is_active",
            "phone",
            "must_change_password",
            "last_login",
            "date_joined",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_roles(self, obj: User) -> list[str]:
        # role_assignments are prefetched by user_list_queryset.
        return sorted(a.role for a in obj.role_assignments.all())

    @extend_schema_field(serializers.ChoiceField(choices=["active", "disabled", "locked"]))
    def get_status(self, obj: User) -> str:
        return user_status(obj)[0]
