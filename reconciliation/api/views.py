"""Read-only settlement endpoints: /api/v1/settlements/ and /api/v1/reconciliation-files/ (+ download)."""

from __future__ import annotations

from datetime import date

from django.http import FileResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import viewsets
from rest_framework.decorators import action

from portal.accounts.roles import Perm
from portal.core.api import PortalPagination

from .. import selectors
from ..services import reconciliation_file_download
from ..views import CONTENT_TYPES
from .serializers import MerchantSettlementSerializer, ReconciliationFileSerializer


def _day(value: str | None) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


class SettlementViewSet(viewsets.ReadOnlyModelViewSet):
    """Settlement summaries of the visible merchants (``?day=YYYY-MM-DD``, ``?merchant=<code>``)."""

    serializer_class = MerchantSettlementSerializer
    pagination_class = PortalPagination
    required_permission = Perm.SETTLEMENT_VIEW

    def get_queryset(self):
        qs = selectors.settlements_visible_to(self.request.user).order_by("-day", "merchant__code")
        day = _day(self.request.query_params.get("day"))
        if day:
            qs = qs.filter(day=day)
        merchant = self.request.query_params.get("merchant")
        if merchant:
            qs = qs.filter(merchant__code=merchant)
        return qs


class ReconciliationFileViewSet(viewsets.ReadOnlyModelViewSet):
    """Generated files of the visible organisations (``?day=``, ``?kind=``, ``?language=``); ``download/`` sends
    the bytes (produced again if missing) and is audited."""

    serializer_class = ReconciliationFileSerializer
    pagination_class = PortalPagination
    required_permission = Perm.SETTLEMENT_VIEW

    def get_queryset(self):
        qs = selectors.files_visible_to(self.request.user)
        params = self.request.query_params
        day = _day(params.get("day"))
        if day:
            qs = qs.filter(day=day)
        if params.get("kind"):
            qs = qs.filter(kind=params["kind"])
        if "language" in params:
            qs = qs.filter(language=params["language"])
        return qs

    @extend_schema(summary="Download the file", responses={(200, "application/octet-stream"): OpenApiTypes.BINARY})
    @action(detail=True, methods=["get"])
    def download(self, request, pk=None):
        file = self.get_object()
        path = reconciliation_file_download(actor=request.user, file=file)
        extension = file.name.rsplit(".", 1)[-1]
        response = FileResponse(
            open(path, "rb"),
            as_attachment=True,
            filename=file.name,
            content_type=CONTENT_TYPES.get(extension, "application/octet-stream"),
        )
        response["X-Content-Type-Options"] = "nosniff"
        response["Cache-Control"] = "private, no-store"
        return response
