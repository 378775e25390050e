"""Django admin: fee rates and the working-day override table are kept by platform administrators; the close
results and the file register are read-only (they change only through the services)."""

from django.contrib import admin

from .models import (
    AcquirerSettlement,
    FeeRate,
    MerchantSettlement,
    ReconciliationFile,
    SettlementDay,
    WorkingDayOverride,
)


@admin.register(FeeRate)
class FeeRateAdmin(admin.ModelAdmin):
    list_display = ("merchant", "card_class", "rate_bp", "min_fee", "max_fee")
    list_filter = ("card_class",)
    raw_id_fields = ("merchant",)


@admin.register(WorkingDayOverride)
class WorkingDayOverrideAdmin(admin.ModelAdmin):
    list_display = ("day", "is_working", "note")


class _ReadOnly(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(SettlementDay)
class SettlementDayAdmin(_ReadOnly):
    list_display = ("day", "status", "closed_at", "merchant_count", "content_hash")


@admin.register(MerchantSettlement)
class MerchantSettlementAdmin(_ReadOnly):
    list_display = ("day", "merchant", "payment_count", "payment_amount", "refund_amount", "fee", "net", "settle_on")
    list_filter = ("day",)


@admin.register(AcquirerSettlement)
class AcquirerSettlementAdmin(_ReadOnly):
    list_display = ("day", "acquirer", "merchant_count", "payment_amount", "fee", "net")


@admin.register(ReconciliationFile)
class ReconciliationFileAdmin(_ReadOnly):
    list_display = ("name", "organisation", "kind", "day", "month", "language", "size", "sha256", "generated_at")
    list_filter = ("kind",)
