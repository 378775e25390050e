"""The audit trail in the Django admin: read-only, no add, change or delete."""

from django.contrib import admin

from .models import AuditEvent


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = ("sequence", "occurred_at", "actor_repr", "action", "outcome")
    list_filter = ("outcome",)
    search_fields = ("actor_repr", "action", "object_id", "request_id")
    ordering = ("-sequence",)
    list_select_related = ("organisation",)
    show_full_result_count = False
    actions = None

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
