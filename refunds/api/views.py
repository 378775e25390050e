"""The refund API: single refunds and voids, their review, and batch refund files.

Writes are explicit actions with a small input serializer calling a service; refusals use the one
error envelope ``{"error": {"code", "message"}}`` with the message in the caller's language.
Money-moving POSTs honour ``Idempotency-Key`` (see ``idempotency``). Approving and rejecting take
``otp_token`` (a step-up code: SMS from ``POST /api/v1/otp/send/`` or an authenticator app).
"""

from __future__ import annotations

from django.http import Http404, StreamingHttpResponse
from django.utils.http import content_disposition_header
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response

from payments.models import Transaction
from portal.accounts.models import Organisation
from portal.accounts.roles import Perm
from portal.accounts.stepup import verify_step_up_token
from portal.approvals import errors as approval_errors
from portal.approvals.models import ApprovalRequest
from portal.approvals.services import approval_decide
from portal.approvals.stepup import otp_verified_at
from portal.batches import selectors as batch_selectors
from portal.batches import storage
from portal.batches.api.serializers import BatchLineErrorSerializer, BatchSerializer, BatchUploadSerializer
from portal.batches.choices import FileFormat
from portal.batches.services import BatchError, batch_cancel, batch_submit, batch_upload

from .. import selectors
from ..errors import RefundError
from ..services import refund_cancel, refund_request
from .idempotency import idempotent
from .serializers import CancelSerializer, DecisionSerializer, RefundCreateSerializer, RefundSerializer


def error(code: str, message, status: int) -> Response:
    return Response({"error": {"code": code, "message": str(message)}}, status=status)


def _approval_error(exc: approval_errors.ApprovalError) -> Response:
    return error(exc.code, exc, exc.status)


def _decide(request, approval_id, *, decision: str, default_hash: str | None = None):
    """Check the step-up code (when given) and decide the approval request; an error Response or None."""
    payload = DecisionSerializer(data=request.data)
    payload.is_valid(raise_exception=True)
    data = payload.validated_data
    approval = ApprovalRequest.objects.visible_to(request.user).filter(pk=approval_id).first()
    if approval is None:
        return error("not_found", _("No such approval request."), 404), None
    token = (data.get("otp_token") or "").strip()
    if token and not verify_step_up_token(request._request, request.user, token):
        return error("otp_invalid", _("This code is not valid or has expired."), 403), None
    try:
        decided = approval_decide(
            actor=request.user,
            request_id=approval.pk,
            decision=decision,
            seen_content_hash=data.get("content_hash") or default_hash or approval.content_hash,
            otp_verified_at=otp_verified_at(request._request),
            reason=data.get("reason", ""),
        )
    except approval_errors.ApprovalError as exc:
        return _approval_error(exc), None
    return None, decided


class RefundViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """``/api/v1/refunds/``: list, one refund, create (``orig_query_id``, ``amount`` in fen, ``reason``;
    a void is chosen automatically when the payment is in the current settlement day and the amount
    is full), ``approve``, ``reject`` (``otp_token``, ``reason``), ``cancel`` (the maker)."""

    serializer_class = RefundSerializer
    filter_backends: list = []
    parser_classes = [JSONParser, FormParser, MultiPartParser]

    @property
    def required_permission(self) -> str:
        action_name = getattr(self, "action", None)
        if action_name in ("create", "cancel"):
            return Perm.REFUNDS_CREATE
        if action_name in ("approve", "reject"):
            return Perm.REFUNDS_APPROVE
        return Perm.REFUNDS_VIEW

    def get_queryset(self):
        return selectors.refunds_visible_to(self.request.user).order_by("-created_at", "-pk")

    @extend_schema(request=RefundCreateSerializer, responses={201: RefundSerializer})
    @idempotent
    def create(self, request, *args, **kwargs):
        payload = RefundCreateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        original = Transaction.objects.visible_to(request.user).filter(query_id=data["orig_query_id"]).first()
        if original is None:
            return error("not_found", RefundError("not_found").message, 404)
        try:
            refund = refund_request(actor=request.user, original=original, amount=data["amount"], reason=data["reason"])
        except RefundError as exc:
            return Response(
                {"error": {"code": exc.code, "message": exc.message, "params": exc.params}}, status=exc.status
            )
        except approval_errors.ApprovalError as exc:
            return _approval_error(exc)
        refund = self.get_queryset().get(pk=refund.pk)
        return Response(RefundSerializer(refund).data, status=201)

    @extend_schema(request=DecisionSerializer, responses={200: RefundSerializer})
    @action(detail=True, methods=["post"])
    @idempotent
    def approve(self, request, pk=None):
        return self._decision(request, "approve")

    @extend_schema(request=DecisionSerializer, responses={200: RefundSerializer})
    @action(detail=True, methods=["post"])
    @idempotent
    def reject(self, request, pk=None):
        return self._decision(request, "reject")

    def _decision(self, request, decision: str):
        refund = self.get_object()
        if not refund.approval_id:
            return error("not_found", _("No such approval request."), 404)
        failure, _decided = _decide(request, refund.approval_id, decision=decision)
        if failure is not None:
            return failure
        return Response(RefundSerializer(self.get_queryset().get(pk=refund.pk)).data)

    @extend_schema(request=CancelSerializer, responses={200: RefundSerializer})
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        refund = self.get_object()
        payload = CancelSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        try:
            refund_cancel(actor=request.user, refund=refund, reason=payload.validated_data.get("reason", ""))
        except RefundError as exc:
            return error(exc.code, exc.message, exc.status)
        return Response(RefundSerializer(self.get_queryset().get(pk=refund.pk)).data)


class RefundBatchViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """``/api/v1/refund-batches/``: upload (multipart ``file`` [+ ``merchant`` code for an acquirer]),
    one batch, ``submit``, ``approve`` / ``reject`` (``otp_token``), ``cancel``, ``errors`` (the invalid
    lines) and ``result`` (the result file)."""

    serializer_class = BatchSerializer
    filter_backends: list = []
    parser_classes = [MultiPartParser, FormParser, JSONParser]

    @property
    def required_permission(self) -> str:
        action_name = getattr(self, "action", None)
        if action_name in ("create", "submit", "cancel"):
            return Perm.BATCHES_UPLOAD
        if action_name in ("approve", "reject"):
            return Perm.BATCHES_APPROVE
        return Perm.REFUNDS_VIEW

    def get_queryset(self):
        return selectors.refund_batches_visible_to(self.request.user)

    def _batch_error(self, exc: BatchError) -> Response:
        body = {"error": {"code": exc.code, "message": exc.message}}
        if exc.batch_id and selectors.refund_batches_visible_to(self.request.user).filter(pk=exc.batch_id).exists():
            body["error"]["batch_id"] = exc.batch_id
        return Response(body, status=exc.status)

    @extend_schema(request=BatchUploadSerializer, responses={201: BatchSerializer})
    @idempotent
    def create(self, request, *args, **kwargs):
        payload = BatchUploadSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        merchant = None
        code = payload.validated_data.get("merchant")
        if code:
            merchant = Organisation.objects.visible_to(request.user).merchants().filter(code=code).first()
            if merchant is None:
                return error("merchant_not_visible", _("No such merchant."), 404)
        try:
            batch = batch_upload(
                actor=request.user,
                kind=selectors.BATCH_KIND,
                uploaded_file=payload.validated_data["file"],
                merchant=merchant,
            )
        except BatchError as exc:
            return self._batch_error(exc)
        return Response(BatchSerializer(self.get_queryset().get(pk=batch.pk)).data, status=201)

    @extend_schema(request=None, responses={200: BatchSerializer})
    @action(detail=True, methods=["post"])
    @idempotent
    def submit(self, request, pk=None):
        batch = self.get_object()
        try:
            batch_submit(actor=request.user, batch=batch)
        except BatchError as exc:
            return self._batch_error(exc)
        except approval_errors.ApprovalError as exc:
            return _approval_error(exc)
        return Response(BatchSerializer(self.get_queryset().get(pk=batch.pk)).data)

    @extend_schema(request=DecisionSerializer, responses={200: BatchSerializer})
    @action(detail=True, methods=["post"])
    @idempotent
    def approve(self, request, pk=None):
        return self._decision(request, "approve")

    @extend_schema(request=DecisionSerializer, responses={200: BatchSerializer})
    @action(detail=True, methods=["post"])
    @idempotent
    def reject(self, request, pk=None):
        return self._decision(request, "reject")

    def _decision(self, request, decision: str):
        from portal.batches.approval import batch_content_hash

        batch = self.get_object()
        if not batch.approval_id:
            return error("not_found", _("No such approval request."), 404)
        failure, _decided = _decide(
            request, batch.approval_id, decision=decision, default_hash=batch_content_hash(batch)
        )
        if failure is not None:
            return failure
        return Response(BatchSerializer(self.get_queryset().get(pk=batch.pk)).data)

    @extend_schema(request=CancelSerializer, responses={200: BatchSerializer})
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        batch = self.get_object()
        payload = CancelSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        try:
            batch_cancel(actor=request.user, batch=batch, reason=payload.validated_data.get("reason", ""))
        except BatchError as exc:
            return self._batch_error(exc)
        return Response(BatchSerializer(self.get_queryset().get(pk=batch.pk)).data)

    @extend_schema(responses={200: BatchLineErrorSerializer(many=True)})
    @action(detail=True, methods=["get"])
    def errors(self, request, pk=None):
        batch = self.get_object()
        lines = batch_selectors.batch_invalid_lines(batch)
        page = self.paginate_queryset(lines)
        for line in page:
            line.batch = batch
        return self.get_paginated_response(BatchLineErrorSerializer(page, many=True).data)

    @extend_schema(responses={(200, "application/octet-stream"): bytes})
    @action(detail=True, methods=["get"])
    def result(self, request, pk=None):
        batch = self.get_object()
        if not batch.result_name or not storage.exists(batch.result_name):
            raise Http404
        from portal.audit.services import audit_record

        audit_record(action="batch.download_result", actor=request.user, obj=batch, details={"kind": batch.kind})
        stream = storage.open_plaintext(batch.result_name)
        blocks = iter(lambda: stream.read(storage.CHUNK), b"")
        xlsx = batch.file_format == FileFormat.XLSX
        response = StreamingHttpResponse(
            blocks,
            content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
            if xlsx
            else "application/octet-stream",
        )
        name = f"batch-{batch.pk}-result.{'xlsx' if xlsx else 'txt'}"
        response["Content-Disposition"] = content_disposition_header(True, name)
        response["X-Content-Type-Options"] = "nosniff"
        return response
