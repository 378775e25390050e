from rest_framework import serializers

from ..models import MerchantSettlement, ReconciliationFile


class MerchantSettlementSerializer(serializers.ModelSerializer):
    """A merchant's results of a closed settlement day; every amount is an integer in fen."""

    merchant_code = serializers.CharField(source="merchant.code", read_only=True)
    acquirer_code = serializers.CharField(source="acquirer.code", read_only=True)

    class Meta:
        model = MerchantSettlement
        fields = [
            "id",
            "day",
            "merchant_code",
            "acquirer_code",
            "payment_count",
            "payment_amount",
            "void_count",
            "void_amount",
            "refund_count",
            "refund_amount",
            "fee",
            "net",
            "currency",
            "settle_on",
        ]


class ReconciliationFileSerializer(serializers.ModelSerializer):
    organisation_code = serializers.CharField(source="organisation.code", read_only=True)

    class Meta:
        model = ReconciliationFile
        fields = [
            "id",
            "organisation_code",
            "kind",
            "day",
            "month",
            "language",
            "name",
            "size",
            "sha256",
            "generated_at",
        ]
