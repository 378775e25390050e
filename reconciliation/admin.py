"""Django admin: fee rates and the working-day override table are kept by platform administrators; the close
results and the file register are read-only (they change only through the services).

Every add, change and delete of a fee rate or a working-day override goes through ``services.reference``, audited
(security D1) in the same transaction as the write: ``fee_rate.create`` / ``fee_rate.update`` / ``fee_rate.delete`` and
``working_day_override.create`` / ``.update`` / ``.delete``.
"""

from django.contrib import admin
from django.db import router, transaction

from .models import (
    AcquirerSettlement,
    FeeRate,
    MerchantSettlement,
    ReconciliationFile,
    SettlementDay,
    WorkingDayOverride,
)
from .services.reference import reference_delete, reference_save


class _AuditedAdmin(admin.ModelAdmin):
    """Adds, changes and deletes through ``services.reference``: one audit event each, in the write's transaction."""

    audit_prefix: str = ""

    def audit_organisation(self, obj):
        """The organisation the event belongs to; None means the actor's."""
        return None

    def save_model(self, request, obj, form, change):
        reference_save(
            actor=request.user,
            obj=obj,
            prefix=self.audit_prefix,
            organisation=self.audit_organisation(obj),
            initial=form.initial if change else None,
            changed=list(form.changed_data) if change else None,
        )

    def delete_model(self, request, obj):
        reference_delete(
            actor=request.user, obj=obj, prefix=self.audit_prefix, organisation=self.audit_organisation(obj)
        )

    def delete_queryset(self, request, queryset):
        # The "delete selected" action: one event per object, all in one transaction with the deletes.
        with transaction.atomic(using=router.db_for_write(self.model)):
            for obj in queryset.select_for_update(of=("self",)).order_by("pk"):
                self.delete_model(request, obj)


@admin.register(FeeRate)
class FeeRateAdmin(_AuditedAdmin):
    list_display = ("merchant", "card_class", "rate_bp", "min_fee", "max_fee")
    list_filter = ("card_class",)
    raw_id_fields = ("merchant",)
    audit_prefix = "fee_rate"

    def audit_organisation(self, obj):
        # A merchant's own rate is that merchant's business (as a merchant profile change is); a default rate
        # belongs to the platform administrator's organisation.
        return obj.merchant if obj.merchant_id else None


@admin.register(WorkingDayOverride)
class WorkingDayOverrideAdmin(_AuditedAdmin):
    list_display = ("day", "is_working", "note")
    audit_prefix = "working_day_override"


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
