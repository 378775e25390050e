from __future__ import annotations

from rest_framework import serializers

from ..choices import Resolution
from ..models import Discrepancy, DiscrepancyComment, ReconciliationRun


class RunSerializer(serializers.ModelSerializer):
    merchant = serializers.CharField(source="merchant.code", default=None, read_only=True)
    created_by = serializers.CharField(source="created_by.username", default=None, read_only=True)

    class Meta:
        model = ReconciliationRun
        fields = [
            "id",
            "source",
            "merchant",
            "mer_id",
            "settle_date",
            "file_kind",
            "file_name",
            "file_size",
            "sha256",
            "status",
            "error_code",
            "error",
            "earlier_run",
            "error_count",
            "line_errors",
            "record_count",
            "amount_total",
            "fee_total",
            "settlement_total",
            "adjustment_count",
            "adjustment_amount",
            "adjustment_fee",
            "adjustment_settlement",
            "class_totals",
            "created_by",
            "created_at",
        ]
        read_only_fields = fields


class CommentSerializer(serializers.ModelSerializer):
    author = serializers.CharField(source="author.username", read_only=True)

    class Meta:
        model = DiscrepancyComment
        fields = ["id", "author", "body", "created_at"]
        read_only_fields = fields


class DiscrepancySerializer(serializers.ModelSerializer):
    merchant = serializers.CharField(source="merchant.code", read_only=True)
    assignee = serializers.CharField(source="assignee.username", default=None, read_only=True)
    aged = serializers.SerializerMethodField()

    class Meta:
        model = Discrepancy
        fields = [
            "id",
            "run",
            "cls",
            "merchant",
            "settle_date",
            "query_id",
            "order_id",
            "transaction",
            "record",
            "ledger_amount",
            "upstream_amount",
            "ledger_fee",
            "upstream_fee",
            "ledger_status",
            "status",
            "assignee",
            "resolution",
            "reason",
            "approval_request_id",
            "resolved_at",
            "created_at",
            "aged",
        ]
        read_only_fields = fields

    def get_aged(self, obj) -> bool:
        return obj.is_aged()


class DiscrepancyDetailSerializer(DiscrepancySerializer):
    comments = CommentSerializer(many=True, read_only=True)

    class Meta(DiscrepancySerializer.Meta):
        fields = [*DiscrepancySerializer.Meta.fields, "comments"]
        read_only_fields = fields


class AssignInputSerializer(serializers.Serializer):
    assignee = serializers.CharField(help_text="User name of the person to assign.")


class CommentInputSerializer(serializers.Serializer):
    body = serializers.CharField(max_length=4000)


class ResolveInputSerializer(serializers.Serializer):
    resolution = serializers.ChoiceField(choices=Resolution.choices)
    reason = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")
