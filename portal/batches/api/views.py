"""The batch API: batches of every kind the user may see, and the lines of one batch.

``/api/v1/batches/`` lists them and ``/api/v1/batches/{id}/`` shows one (the shape of the domain APIs,
e.g. ``/api/v1/refund-batches/``); ``/api/v1/batches/{id}/lines/`` pages through its lines by cursor,
filtered like the batch's lines page. Another organisation's batch is a 404. ``BatchLinesMixin`` gives a
kind's own batch viewset the same ``lines`` sub-resource.
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, mixins, viewsets
from rest_framework.decorators import action
from rest_framework.pagination import CursorPagination

from portal.accounts.roles import Perm

from .. import selectors
from ..models import Batch
from ..registry import UnknownKind, get_kind
from .serializers import BatchLineQuerySerializer, BatchLineSerializer, BatchSerializer


class BatchLineCursorPagination(CursorPagination):
    """100 lines a page by keyset on the line number (the unique (batch, line_no) index): the millionth
    line costs what the first does. The cursor is opaque; a forged one is refused, not a server error."""

    page_size = selectors.LINES_PAGE_SIZE
    ordering = "line_no"

    def decode_cursor(self, request):
        cursor = super().decode_cursor(request)
        if cursor is not None and cursor.position is not None:
            try:
                number = int(cursor.position)
            except (TypeError, ValueError):
                raise exceptions.NotFound(self.invalid_cursor_message) from None
            if not 0 <= number < 2**31:
                raise exceptions.NotFound(self.invalid_cursor_message)
        return cursor


class BatchLinesMixin:
    """``GET {id}/lines/`` on a viewset whose ``get_object()`` returns a batch the user may see."""

    @extend_schema(
        description="The lines of the batch in line order, 100 a page (follow ``next``), optionally of one status "
        "and with one order ID: amount in fen, status, the error message of an invalid line or the gateway's "
        "answer of a processed one.",
        parameters=[BatchLineQuerySerializer],
        responses={200: BatchLineSerializer(many=True)},
    )
    @action(detail=True, methods=["get"], pagination_class=BatchLineCursorPagination, filter_backends=[])
    def lines(self, request, pk=None):
        batch = self.get_object()
        query = BatchLineQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        try:
            kind = get_kind(batch.kind)
        except UnknownKind:
            kind = None
        lines = selectors.batch_lines(
            batch,
            status=query.validated_data.get("status", ""),
            order_id=query.validated_data.get("order_id", "").strip(),
        )
        page = self.paginate_queryset(lines)
        data = BatchLineSerializer(page, many=True, context={"batch": batch, "kind": kind}).data
        return self.get_paginated_response(data)


class BatchViewSet(BatchLinesMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """``/api/v1/batches/``: the batches of the kinds the user may view, of the organisations they may see,
    newest first; one batch; its ``lines``."""

    serializer_class = BatchSerializer
    filter_backends: list = []
    required_permission = Perm.BATCHES_VIEW

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # the schema generator has no user
            return Batch.objects.none()
        return selectors.batches_visible_to(self.request.user)
