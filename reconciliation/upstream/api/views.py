"""/api/v1/reconciliation/runs/ and /api/v1/reconciliation/discrepancies/ (scoped; 404 across tenants).

Reads need ``settlement.view``; the actions assign / comment / resolve need ``reconciliation.manage`` and call the
same services as the pages.
"""

from __future__ import annotations

from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from portal.accounts.roles import Perm
from portal.approvals.errors import ApprovalError
from portal.core.api import IsFullyAuthenticated, PortalPagination

from ..filtersets import DiscrepancyFilterSet, RunFilterSet
from ..selectors import discrepancies_visible_to, runs_visible_to
from ..services import WorkbenchError, discrepancy_assign, discrepancy_comment, discrepancy_resolve, eligible_assignees
from .serializers import (
    AssignInputSerializer,
    CommentInputSerializer,
    CommentSerializer,
    DiscrepancyDetailSerializer,
    DiscrepancySerializer,
    ResolveInputSerializer,
    RunSerializer,
)


class RunViewSet(viewsets.ReadOnlyModelViewSet):
    permission_classes = [IsFullyAuthenticated]
    required_permission = Perm.SETTLEMENT_VIEW
    serializer_class = RunSerializer
    pagination_class = PortalPagination
    filter_backends = [DjangoFilterBackend]
    filterset_class = RunFilterSet

    def get_queryset(self):
        return runs_visible_to(self.request.user)


class DiscrepancyViewSet(viewsets.ReadOnlyModelViewSet):
    permission_classes = [IsFullyAuthenticated]
    pagination_class = PortalPagination
    filter_backends = [DjangoFilterBackend]
    filterset_class = DiscrepancyFilterSet

    @property
    def required_permission(self) -> str:
        if self.action in ("assign", "comment", "resolve"):
            return Perm.RECONCILIATION_MANAGE
        return Perm.SETTLEMENT_VIEW

    def get_queryset(self):
        return discrepancies_visible_to(self.request.user)

    def get_serializer_class(self):
        return DiscrepancyDetailSerializer if self.action == "retrieve" else DiscrepancySerializer

    def _act(self, call):
        try:
            call()
        except (WorkbenchError, ApprovalError) as exc:
            raise exceptions.ValidationError({"detail": str(exc)}) from None

    @extend_schema(request=AssignInputSerializer, responses=DiscrepancySerializer)
    @action(detail=True, methods=["post"])
    def assign(self, request, pk=None):
        discrepancy = self.get_object()
        data = AssignInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        people = {u.get_username(): u for u in eligible_assignees(discrepancy)}
        assignee = people.get(data.validated_data["assignee"])
        if assignee is None:
            raise exceptions.ValidationError({"assignee": "This person cannot work on this merchant's discrepancies."})
        self._act(lambda: discrepancy_assign(actor=request.user, discrepancy=discrepancy, assignee=assignee))
        return Response(DiscrepancySerializer(discrepancy).data)

    @extend_schema(request=CommentInputSerializer, responses=CommentSerializer)
    @action(detail=True, methods=["post"])
    def comment(self, request, pk=None):
        discrepancy = self.get_object()
        data = CommentInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        made = {}

        def call():
            made["c"] = discrepancy_comment(
                actor=request.user, discrepancy=discrepancy, body=data.validated_data["body"]
            )

        self._act(call)
        return Response(CommentSerializer(made["c"]).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=ResolveInputSerializer, responses=DiscrepancySerializer)
    @action(detail=True, methods=["post"])
    def resolve(self, request, pk=None):
        discrepancy = self.get_object()
        data = ResolveInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        self._act(
            lambda: discrepancy_resolve(
                actor=request.user,
                discrepancy=discrepancy,
                resolution=data.validated_data["resolution"],
                reason=data.validated_data["reason"],
            )
        )
        return Response(DiscrepancySerializer(discrepancy).data)
