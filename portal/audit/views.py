"""The audit log pages: list with filters, event detail, CSV export and chain verification.

Every successful read writes exactly one audit event (``audit.view``, ``audit.filter``,
``audit.view_event``, ``audit.export``, ``audit.verify``); a refused request writes none,
because the permission check and the scoped lookup come before the event is recorded.
"""

from __future__ import annotations

import json
from zoneinfo import ZoneInfo

from django.conf import settings
from django.http import HttpResponseBadRequest, StreamingHttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views import View
from django.views.generic import TemplateView
from django_filters.views import FilterView
from django_tables2 import SingleTableMixin

from portal.accounts.roles import Perm
from portal.core.mixins import PortalPermissionMixin

from .filtersets import NON_FILTER_PARAMS, AuditEventFilterSet
from .formats.csv_export import csv_lines
from .selectors import (
    audit_event_get,
    audit_events_for,
    audit_export_rows,
    audit_export_snapshot,
    audit_known_actions,
    audit_verify_for,
)
from .services import audit_log_access
from .tables import AuditEventTable, beijing

PAGE_SIZE = 25


def filter_details(filters: dict, **extra) -> dict:
    details = dict(extra)
    if filters:
        details["filters"] = filters
    return details


class AuditEventListView(PortalPermissionMixin, SingleTableMixin, FilterView):
    """The audit log in the reader's scope, newest first, 25 a page."""

    permission_required = Perm.AUDIT_VIEW
    filterset_class = AuditEventFilterSet
    table_class = AuditEventTable
    table_pagination = {"per_page": PAGE_SIZE}
    template_name = "audit/event_list.html"

    def get_queryset(self):
        return audit_events_for(self.request.user)

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        query = self.request.GET.copy()
        for param in NON_FILTER_PARAMS:
            query.pop(param, None)
        context["filter_query"] = query.urlencode()
        context["filters_applied"] = bool(self.filterset.applied_filters())
        context["known_actions"] = audit_known_actions(self.request.user)
        context["can_export"] = self.request.user.has_portal_perm(Perm.AUDIT_EXPORT)
        return context

    def get(self, request, *args, **kwargs):
        response = super().get(request, *args, **kwargs)
        # Rendered before the event is written: the page shows the log as it was when opened.
        response.render()
        filters = self.filterset.applied_filters()
        audit_log_access(
            actor=request.user,
            action="audit.filter" if filters else "audit.view",
            details=filter_details(filters, page=request.GET.get("page", "1")[:16]),
        )
        return response


class AuditEventDetailView(PortalPermissionMixin, TemplateView):
    """One event, every field; another organisation's event is a 404."""

    permission_required = Perm.AUDIT_VIEW
    template_name = "audit/event_detail.html"

    def get(self, request, *args, sequence: int, **kwargs):
        event = audit_event_get(request.user, sequence=sequence)
        response = TemplateResponse(
            request,
            self.template_name,
            {
                "event": event,
                "details_json": json.dumps(event.details, ensure_ascii=False, indent=2, sort_keys=True),
                "occurred_beijing": beijing(event.occurred_at),
                "occurred_utc": event.occurred_at.astimezone(timezone.UTC),
            },
        )
        response.render()
        audit_log_access(actor=request.user, action="audit.view_event", object_id=event.sequence)
        return response


class AuditEventExportView(PortalPermissionMixin, View):
    """The filtered set as CSV, streamed; the export event records the filters and the row count."""

    permission_required = Perm.AUDIT_EXPORT

    def get(self, request, *args, **kwargs):
        filterset = AuditEventFilterSet(
            data=request.GET or None, queryset=audit_events_for(request.user), request=request
        )
        if filterset.is_bound and not filterset.is_valid():
            errors = "; ".join(f"{name}: {' '.join(msgs)}" for name, msgs in filterset.errors.items())
            return HttpResponseBadRequest(_("The filters are not valid: %(errors)s") % {"errors": errors})
        frozen, count = audit_export_snapshot(filterset.qs)
        audit_log_access(
            actor=request.user,
            action="audit.export",
            details=filter_details(filterset.applied_filters(), rows=count, format="csv"),
        )
        stamp = timezone.localtime(timezone.now(), ZoneInfo(settings.BUSINESS_TIME_ZONE)).strftime("%Y%m%d-%H%M%S")
        response = StreamingHttpResponse(csv_lines(audit_export_rows(frozen)), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="audit-log-{stamp}.csv"'
        response["X-Export-Rows"] = str(count)
        response["Cache-Control"] = "no-store"
        return response


class AuditVerifyView(PortalPermissionMixin, View):
    """Walk the hash chain now and show the result (POST: it writes an audit event)."""

    permission_required = Perm.AUDIT_VIEW
    http_method_names = ["post"]

    def post(self, request, *args, **kwargs):
        report = audit_verify_for(request.user)
        response = TemplateResponse(request, "audit/verify_result.html", {"report": report})
        response.render()
        audit_log_access(
            actor=request.user,
            action="audit.verify",
            outcome="success" if report.ok else "failure",
            details={
                "ok": report.ok,
                "verified": report.verified,
                "first_broken_sequence": report.first_broken_sequence,
                "reason": report.reason,
            },
        )
        return response
