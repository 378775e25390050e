from django.contrib import admin

from .models import Transaction


@admin.register(Transaction)
class TransactionAdmin(admin.ModelAdmin):
    """Read-only: the ledger changes only through ``payments.services``."""

    list_display = ("order_id", "merchant", "txn_time", "txn_type", "amount", "status", "query_id", "settle_date")
    list_filter = ("status", "txn_type", "source")
    search_fields = ("=order_id", "=query_id")
    list_select_related = ("merchant",)
    raw_id_fields = ("merchant", "acquirer", "orig")
    exclude = ("card_hash",)
    show_full_result_count = False

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
