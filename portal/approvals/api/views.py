"""``GET /api/v1/approvals/`` (visible requests) and ``?mine=pending`` (waiting for my review)."""

from django.db.models import Prefetch
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import exceptions, viewsets

from portal.accounts.roles import Perm

from ..models import ApprovalStage
from ..policies import APPROVER_PERMS
from ..selectors import approvals_visible_to, approvals_waiting_for
from .serializers import ApprovalRequestSerializer

# Reading requests: anyone who can read refunds or batches, or review them.
_READ_PERMS = (Perm.REFUNDS_VIEW, Perm.BATCHES_VIEW, *APPROVER_PERMS)


@extend_schema_view(
    list=extend_schema(
        summary="Approval requests",
        description="Requests of the organisations you may see, newest first. `mine=pending`: only those whose "
        "current stage you can decide (needs an approve permission), nearest deadline first. Amounts in fen.",
        parameters=[OpenApiParameter("mine", OpenApiTypes.STR, enum=["pending"])],
    ),
    retrieve=extend_schema(summary="One approval request with its stages"),
)
class ApprovalRequestViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = ApprovalRequestSerializer
    filter_backends: list = []

    def _mine(self) -> bool:
        mine = self.request.query_params.get("mine")
        if mine not in (None, "", "pending"):
            raise exceptions.ValidationError({"mine": [_("Only mine=pending is supported.")]})
        return mine == "pending" and getattr(self, "action", None) == "list"

    @property
    def required_permission(self) -> str:
        """Any one of the allowed permissions (IsFullyAuthenticated checks the one returned)."""
        allowed = APPROVER_PERMS if self._mine() else _READ_PERMS
        user = self.request.user
        held = [p for p in allowed if user.is_authenticated and user.has_portal_perm(p)]
        return held[0] if held else allowed[0]

    def get_queryset(self):
        user = self.request.user
        qs = approvals_waiting_for(user) if self._mine() else approvals_visible_to(user)
        stages = ApprovalStage.objects.select_related("org", "decided_by").order_by("index")
        return qs.prefetch_related(Prefetch("stages", queryset=stages))
