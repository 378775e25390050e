"""The audit trail in the Django admin: read-only, no add, change or delete.

Reading it is audited like the portal's own pages (security D4): a list page writes one ``audit.view``
(``audit.filter`` when filtered or searched) and an event page one ``audit.view_event``, after the page is
rendered; a refused request (no permission, unknown event, a POST) writes none.
"""

from django.contrib import admin
from django.contrib.admin.views.main import PAGE_VAR

from portal.accounts.roles import Perm

from .models import AuditEvent
from .services import audit_log_access

# Long search strings are cut in the event's details.
_MAX_PARAM = 200


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

    def has_view_permission(self, request, obj=None):
        # Read access only with the job need (security D4): the admin's platform role alone is not enough,
        # the user must also hold the audit permission (the auditor role), as on the portal's audit pages.
        return super().has_view_permission(request, obj) and request.user.has_portal_perm(Perm.AUDIT_VIEW)

    def has_module_permission(self, request):
        return super().has_module_permission(request) and request.user.has_portal_perm(Perm.AUDIT_VIEW)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def changelist_view(self, request, extra_context=None):
        response = super().changelist_view(request, extra_context)
        changelist = getattr(response, "context_data", {}).get("cl") if response.status_code == 200 else None
        if changelist is None:
            # A redirect (bad filter) or an error page: nothing of the log was shown.
            return response
        # Rendered before the event is written: the page shows the log as it was when opened.
        response.render()
        filters = {}
        for name, values in changelist.get_filters_params().items():
            values = [value[:_MAX_PARAM] for value in values]
            filters[name] = values[0] if len(values) == 1 else values
        if changelist.query:
            filters["q"] = changelist.query[:_MAX_PARAM]
        details = {"admin": True, "page": request.GET.get(PAGE_VAR, "1")[:16]}
        if filters:
            details["filters"] = filters
        audit_log_access(actor=request.user, action="audit.filter" if filters else "audit.view", details=details)
        return response

    def change_view(self, request, object_id, form_url="", extra_context=None):
        response = super().change_view(request, object_id, form_url, extra_context)
        event = getattr(response, "context_data", {}).get("original") if response.status_code == 200 else None
        if request.method not in ("GET", "HEAD") or not isinstance(event, AuditEvent):
            # An unknown event redirects to the admin index; a POST is refused (read-only) before this point.
            return response
        response.render()
        audit_log_access(
            actor=request.user, action="audit.view_event", object_id=event.sequence, details={"admin": True}
        )
        return response
