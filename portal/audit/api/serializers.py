"""Read-only representation of audit events for the REST API."""

from rest_framework import serializers

from portal.audit.models import AuditEvent


class AuditEventSerializer(serializers.ModelSerializer):
    actor = serializers.CharField(source="actor_repr", read_only=True)
    organisation = serializers.SlugRelatedField(slug_field="code", read_only=True)

    class Meta:
        model = AuditEvent
        fields = (
            "sequence",
            "occurred_at",
            "actor",
            "organisation",
            "action",
            "object_type",
            "object_id",
            "outcome",
            "ip",
            "user_agent",
            "request_id",
            "details",
            "prev_hash",
            "hash",
        )
        read_only_fields = fields
