"""The audit log through the REST API: the same FilterSet and scoping as the pages, audited too."""

from django_filters.rest_framework import DjangoFilterBackend
from rest_framework import viewsets

from portal.accounts.roles import Perm
from portal.audit.filtersets import AuditEventFilterSet
from portal.audit.selectors import audit_events_for
from portal.audit.services import audit_log_access

from .serializers import AuditEventSerializer


class AuditEventViewSet(viewsets.ReadOnlyModelViewSet):
    """Audit events the caller's organisation may read, newest first. ``GET /audit-events/<sequence>/``
    reads one; another organisation's event is a 404. Every successful read is an audit event."""

    serializer_class = AuditEventSerializer
    filterset_class = AuditEventFilterSet
    filter_backends = [DjangoFilterBackend]
    required_permission = Perm.AUDIT_VIEW
    lookup_field = "sequence"
    lookup_value_regex = r"[0-9]+"

    def get_queryset(self):
        return audit_events_for(self.request.user)

    def list(self, request, *args, **kwargs):
        response = super().list(request, *args, **kwargs)
        filters = AuditEventFilterSet(data=request.query_params, request=request).applied_filters()
        details = {"api": True}
        if filters:
            details["filters"] = filters
        audit_log_access(actor=request.user, action="audit.filter" if filters else "audit.view", details=details)
        return response

    def retrieve(self, request, *args, **kwargs):
        response = super().retrieve(request, *args, **kwargs)
        audit_log_access(
            actor=request.user, action="audit.view_event", object_id=kwargs["sequence"], details={"api": True}
        )
        return response
