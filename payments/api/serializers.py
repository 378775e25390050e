"""JSON shapes of the ledger API: snake_case fields, amounts as integers in fen."""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from portal.accounts.models import Organisation

from ..models import ExportJob, Transaction
from ..selectors import merchant_profile_of, refundable_amount


class TransactionSerializer(serializers.ModelSerializer):
    merchant = serializers.CharField(source="merchant.code", read_only=True, help_text="Merchant number (merId).")
    acquirer = serializers.CharField(source="acquirer.code", read_only=True)
    orig_id = serializers.IntegerField(read_only=True, allow_null=True)
    amount = serializers.IntegerField(read_only=True, help_text="Amount in fen.")
    refunded_amount = serializers.IntegerField(read_only=True, help_text="Refunded so far, in fen.")
    refundable_amount = serializers.SerializerMethodField(help_text="Still refundable online, in fen.")

    class Meta:
        model = Transaction
        fields = [
            "id",
            "merchant",
            "acquirer",
            "order_id",
            "txn_time",
            "txn_type",
            "txn_sub_type",
            "biz_type",
            "channel_type",
            "access_type",
            "amount",
            "currency",
            "status",
            "resp_code",
            "resp_msg",
            "query_id",
            "trace_no",
            "trace_time",
            "settle_date",
            "orig_query_id",
            "orig_id",
            "card_masked",
            "card_type",
            "req_reserved",
            "refunded_amount",
            "refundable_amount",
            "source",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.IntegerField())
    def get_refundable_amount(self, obj: Transaction) -> int:
        return refundable_amount(obj)


class MerchantSerializer(serializers.ModelSerializer):
    acquirer = serializers.CharField(source="acquirer.code", read_only=True)
    user_count = serializers.IntegerField(read_only=True)
    settlement_account_masked = serializers.SerializerMethodField()

    class Meta:
        model = Organisation
        fields = [
            "id",
            "code",
            "name_zh",
            "name_en",
            "status",
            "mcc",
            "acquirer",
            "user_count",
            "settlement_account_masked",
            "created_at",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_settlement_account_masked(self, obj) -> str | None:
        profile = merchant_profile_of(obj)
        return (profile.settlement_account_masked or None) if profile is not None else None


class CardRefInputSerializer(serializers.Serializer):
    card_number = serializers.CharField(max_length=25, write_only=True)


class CardRefSerializer(serializers.Serializer):
    card_ref = serializers.CharField()
    card_masked = serializers.CharField()


class ExportJobSerializer(serializers.ModelSerializer):
    """A background download: ``status`` is queued, running, ready, failed or expired."""

    percent = serializers.IntegerField(read_only=True)
    download_url = serializers.SerializerMethodField()

    class Meta:
        model = ExportJob
        fields = [
            "id",
            "kind",
            "status",
            "file_format",
            "rows_total",
            "rows_done",
            "percent",
            "size",
            "sha256",
            "error",
            "created_at",
            "finished_at",
            "expires_at",
            "download_url",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_download_url(self, obj: ExportJob) -> str | None:
        if obj.status != "ready":
            return None
        request = self.context.get("request")
        path = f"/api/v1/exports/{obj.pk}/download/"
        return request.build_absolute_uri(path) if request is not None else path
