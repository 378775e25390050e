"""JSON of refunds (amounts in fen) and the small input serializers of the refund API."""

from rest_framework import serializers

from ..models import Refund


class RefundSerializer(serializers.ModelSerializer):
    merchant = serializers.CharField(source="merchant.code", read_only=True)
    orig_query_id = serializers.CharField(source="original.query_id", read_only=True)
    orig_order_id = serializers.CharField(source="original.order_id", read_only=True)
    maker = serializers.CharField(source="maker.username", read_only=True)
    txn_type = serializers.CharField(read_only=True)
    content_hash = serializers.SerializerMethodField(help_text="What a reviewer approves (SHA-256).")

    class Meta:
        model = Refund
        fields = [
            "id",
            "merchant",
            "kind",
            "txn_type",
            "order_id",
            "amount",
            "currency",
            "reason",
            "status",
            "orig_query_id",
            "orig_order_id",
            "maker",
            "approval_id",
            "content_hash",
            "resp_code",
            "resp_msg",
            "query_id",
            "settle_date",
            "trace_no",
            "trace_time",
            "created_at",
            "sent_at",
            "finished_at",
        ]
        read_only_fields = fields

    def get_content_hash(self, refund: Refund) -> str:
        from ..services import refund_content_hash

        return refund_content_hash(refund)


class RefundCreateSerializer(serializers.Serializer):
    orig_query_id = serializers.CharField(max_length=21)
    amount = serializers.IntegerField(help_text="Fen, more than zero.")
    reason = serializers.CharField(max_length=255)


class DecisionSerializer(serializers.Serializer):
    otp_token = serializers.CharField(max_length=16, required=False, allow_blank=True)
    reason = serializers.CharField(max_length=1000, required=False, allow_blank=True)
    content_hash = serializers.CharField(max_length=64, required=False, allow_blank=True)


class CancelSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=255, required=False, allow_blank=True)
