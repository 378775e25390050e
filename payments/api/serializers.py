"""JSON shapes of the ledger API: snake_case fields, amounts as integers in fen."""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from portal.accounts.models import Organisation

from .. import hooks
from ..models import PRODUCTS, ExportJob, Transaction
from ..selectors import merchant_profile_of, merchant_refund_window_days, refundable_amount


class TransactionListSerializer(serializers.ListSerializer):
    """A page of transactions: what refunds in flight hold is asked once for the whole page (the
    refund hooks' bounded queries, none when no row can still be refunded), never once per row."""

    def to_representation(self, data):
        rows = list(data.all() if hasattr(data, "all") else data)
        open_ids = [row.pk for row in rows if refundable_amount(row, held=0) > 0]
        self.child.refund_held = hooks.refund_held(open_ids)
        try:
            return super().to_representation(rows)
        finally:
            self.child.refund_held = None


class TransactionSerializer(serializers.ModelSerializer):
    # Fen held per original by refunds in flight, set by the list serializer for its page.
    refund_held: dict[int, int] | None = None

    merchant = serializers.CharField(source="merchant.code", read_only=True, help_text="Merchant number (merId).")
    acquirer = serializers.CharField(source="acquirer.code", read_only=True)
    orig_id = serializers.IntegerField(read_only=True, allow_null=True)
    amount = serializers.IntegerField(read_only=True, help_text="Amount in fen.")
    refunded_amount = serializers.IntegerField(read_only=True, help_text="Refunded so far, in fen.")
    refundable_amount = serializers.SerializerMethodField(
        help_text="Still refundable online, in fen: amount − refunded − held by refunds and batch lines in progress."
    )

    class Meta:
        model = Transaction
        list_serializer_class = TransactionListSerializer
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
        """Amount − refunded (ledger) − held by refunds and batch lines in flight, as the refund form says."""
        if self.refund_held is not None:
            return refundable_amount(obj, held=self.refund_held.get(obj.pk, 0))
        return refundable_amount(obj)


class MerchantProductSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="Product code, e.g. 000201.")
    name = serializers.CharField(help_text="Product name in the language of the request.")


class MerchantSerializer(serializers.ModelSerializer):
    """What the merchant detail page shows. The settlement account is masked as stored (first four and
    last four digits); the full number is never held. Limits are integers in fen, null for no limit."""

    acquirer = serializers.CharField(source="acquirer.code", read_only=True)
    user_count = serializers.IntegerField(read_only=True, help_text="Users of the merchant.")
    settlement_bank = serializers.SerializerMethodField(help_text="Bank of the settlement account.")
    settlement_account_masked = serializers.SerializerMethodField(
        help_text="Settlement account, masked (first four and last four digits)."
    )
    products = serializers.SerializerMethodField(help_text="Products the merchant may use.")
    limit_per_txn = serializers.IntegerField(
        source="merchant_profile.limit_per_txn",
        read_only=True,
        allow_null=True,
        help_text="Limit per transaction in fen; null: no limit.",
    )
    limit_daily = serializers.IntegerField(
        source="merchant_profile.limit_daily",
        read_only=True,
        allow_null=True,
        help_text="Daily limit in fen; null: no limit.",
    )
    limit_monthly = serializers.IntegerField(
        source="merchant_profile.limit_monthly",
        read_only=True,
        allow_null=True,
        help_text="Monthly limit in fen; null: no limit.",
    )
    refund_window_days = serializers.SerializerMethodField(
        help_text="Online refunds are accepted up to this many days after the payment."
    )

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
            "settlement_bank",
            "settlement_account_masked",
            "products",
            "limit_per_txn",
            "limit_daily",
            "limit_monthly",
            "refund_window_days",
            "created_at",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_settlement_bank(self, obj) -> str | None:
        profile = merchant_profile_of(obj)
        return (profile.settlement_bank or None) if profile is not None else None

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_settlement_account_masked(self, obj) -> str | None:
        profile = merchant_profile_of(obj)
        return (profile.settlement_account_masked or None) if profile is not None else None

    @extend_schema_field(MerchantProductSerializer(many=True))
    def get_products(self, obj) -> list[dict[str, str]]:
        profile = merchant_profile_of(obj)
        codes = profile.products if profile is not None else []
        return [{"code": code, "name": str(PRODUCTS.get(code, ""))} for code in codes or []]

    @extend_schema_field(serializers.IntegerField())
    def get_refund_window_days(self, obj) -> int:
        return merchant_refund_window_days(obj)


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
