from rest_framework import serializers

from ..models import ApprovalRequest, ApprovalStage
from ..registry import describe_request


class ApprovalStageSerializer(serializers.ModelSerializer):
    organisation = serializers.CharField(source="org.code", read_only=True)
    decided_by = serializers.SerializerMethodField()

    class Meta:
        model = ApprovalStage
        fields = ["index", "role", "organisation", "status", "decided_by", "decided_at", "reason"]

    def get_decided_by(self, obj) -> str | None:
        return obj.decided_by.get_username() if obj.decided_by_id else None


class ApprovalRequestSerializer(serializers.ModelSerializer):
    organisation = serializers.CharField(source="organisation.code", read_only=True)
    maker = serializers.CharField(source="maker.username", read_only=True)
    stages = ApprovalStageSerializer(many=True, read_only=True)
    url = serializers.SerializerMethodField()

    class Meta:
        model = ApprovalRequest
        fields = [
            "id",
            "kind",
            "object_type",
            "object_id",
            "organisation",
            "maker",
            "amount",
            "content_hash",
            "status",
            "status_reason",
            "summary",
            "created_at",
            "expires_at",
            "decided_at",
            "stages",
            "url",
        ]

    def get_url(self, obj) -> str:
        return describe_request(obj).get("url", "")
