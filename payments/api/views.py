"""Read-only ledger endpoints: /api/v1/transactions/ and /api/v1/merchants/ (scoped; 404 across tenants)."""

from __future__ import annotations

from django.http import FileResponse, StreamingHttpResponse
from django.utils import timezone
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import exceptions, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from portal.accounts.roles import Perm

from .. import exports
from ..cards import looks_like_pan, luhn_valid, mask_pan, normalise_pan
from ..choices import ExportStatus
from ..filtersets import TransactionFilterSet, make_card_ref
from ..forms import ExportForm
from ..merchant_filters import MerchantFilterSet
from ..selectors import export_jobs_of, merchants_visible_to, transactions_visible_to
from ..services import export_download_record, export_request, ledger_export_record
from ..views.downloads import CONTENT_TYPES
from ..views.transactions import job_format
from .filters import TODAY_PARAM, TransactionFilterBackend, list_mode
from .pagination import TransactionKeysetPagination
from .serializers import (
    CardRefInputSerializer,
    CardRefSerializer,
    ExportJobSerializer,
    MerchantSerializer,
    TransactionSerializer,
)

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


TODAY_PARAMETER = OpenApiParameter(
    TODAY_PARAM,
    OpenApiTypes.BOOL,
    description=(
        "`true`: the current settlement day (from 23:00 Beijing time the day before to 23:00), like the portal's "
        "Today's transactions page. Cannot be combined with date_from, date_to or settle_date."
    ),
)


@extend_schema_view(
    list=extend_schema(
        summary="Transactions of the visible merchants",
        description=(
            "Same filters as the portal pages. Without date_from/date_to (and without order_id or query_id) the "
            "last seven Beijing days are searched; a query spans at most one year, and dates lie within the "
            "seven years transactions are kept, up to tomorrow. `today=true` searches the current settlement "
            "day instead. amount_min / amount_max are in yuan; every amount in the answer is an integer in fen. "
            "`card` takes the last four digits; for a full card number first POST it to `card-ref/` and pass "
            "the returned `card_ref`. `sort` orders the list (default newest first) and the keyset paging "
            "follows it: follow the `next` / `previous` links, whose `cursor` is only valid with the same sort. "
            "`totals` gives the count and amount (fen) of the whole filtered set and of its successful part."
        ),
        parameters=[TODAY_PARAMETER],
    ),
    retrieve=extend_schema(summary="One transaction"),
)
class TransactionViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = TransactionSerializer
    filterset_class = TransactionFilterSet
    filter_backends = [TransactionFilterBackend]
    pagination_class = TransactionKeysetPagination

    @property
    def required_permission(self) -> str:
        return Perm.TRANSACTIONS_EXPORT if getattr(self, "action", None) == "export" else Perm.TRANSACTIONS_VIEW

    def get_queryset(self):
        return transactions_visible_to(self.request.user).select_related(
            "merchant", "merchant__merchant_profile", "acquirer"
        )

    def filter_queryset(self, queryset):
        if self.action == "list" and looks_like_pan(normalise_pan(self.request.query_params.get("card", ""))):
            # A full number in a URL would end up in access logs: refuse it.
            raise exceptions.ValidationError({"card": [_("Send a full card number to card-ref/ by POST instead.")]})
        return super().filter_queryset(queryset)

    @extend_schema(
        summary="Detail download (CSV or XLSX) of the filtered set",
        description=(
            "Same filters as the list. Up to the stream limit (50,000 rows) the file is the answer (200). "
            "Larger sets: POST the same request and a background job is queued (202 with the job, whose "
            "status is at /api/v1/exports/{id}/); a GET answers 400. An empty set answers 400. Audited."
        ),
        parameters=[
            OpenApiParameter("file_format", OpenApiTypes.STR, enum=["csv", "xlsx"]),
            OpenApiParameter("encoding", OpenApiTypes.STR, enum=["utf-8", "gbk"]),
            TODAY_PARAMETER,
        ],
        request=None,
        responses={
            (200, "text/csv"): OpenApiTypes.BINARY,
            (200, XLSX): OpenApiTypes.BINARY,
            (202, "application/json"): ExportJobSerializer,
        },
    )
    @action(detail=False, methods=["get", "post"], url_path="export", pagination_class=None, filterset_class=None)
    def export(self, request):
        data = request.query_params.copy()
        if request.method == "POST" and hasattr(request.data, "items"):
            for key, value in request.data.items():
                data[key] = str(value)
        options = ExportForm(data)
        if not options.is_valid():
            raise exceptions.ValidationError(options.errors)
        if request.method == "GET" and looks_like_pan(normalise_pan(data.get("card", ""))):
            raise exceptions.ValidationError({"card": [_("Send a full card number to card-ref/ by POST instead.")]})
        filterset = TransactionFilterSet(data, queryset=self.get_queryset(), request=request, mode=list_mode(data))
        if not filterset.is_valid():
            raise exceptions.ValidationError(filterset.errors)
        qs = filterset.qs
        rows = qs.count()
        if rows == 0:
            raise exceptions.ValidationError({"non_field_errors": [_("No transactions match this search.")]})
        file_format = options.cleaned_data["file_format"]
        encoding = options.cleaned_data.get("encoding") or "utf-8"
        if rows > exports.stream_limit():
            return self._background(request, filterset, rows, file_format, encoding)
        ledger_export_record(
            actor=request.user,
            rows=rows,
            file_format=file_format,
            encoding=encoding if file_format == "csv" else "",
            filters={**filterset.describe(), "via": "api"},
        )
        if file_format == "xlsx":
            return FileResponse(
                exports.xlsx_file(qs, sort=filterset.sort_order),
                as_attachment=True,
                filename="transactions.xlsx",
                content_type=XLSX,
            )
        response = StreamingHttpResponse(
            exports.csv_stream(qs, encoding=encoding, sort=filterset.sort_order),
            content_type=f"text/csv; charset={'GBK' if encoding == 'gbk' else 'utf-8'}",
        )
        response["Content-Disposition"] = 'attachment; filename="transactions.csv"'
        return response

    def _background(self, request, filterset, rows: int, file_format: str, encoding: str):
        fmt = job_format(file_format, encoding)
        limit = exports.job_limit(fmt)
        if request.method != "POST":
            raise exceptions.ValidationError(
                {
                    "non_field_errors": [
                        _(
                            "This search has more than %(max)s rows: POST the same request to have the file "
                            "prepared in the background."
                        )
                        % {"max": exports.stream_limit()}
                    ]
                }
            )
        if rows > limit:
            raise exceptions.ValidationError(
                {
                    "non_field_errors": [
                        _("A download can hold at most %(max)s rows; narrow the search.") % {"max": limit}
                    ]
                }
            )
        job = export_request(
            actor=request.user,
            params=filterset.job_params(),
            fmt=fmt,
            rows_total=rows,
            description={**filterset.describe(), "via": "api"},
        )
        return Response(ExportJobSerializer(job, context={"request": request}).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        summary="Exchange a full card number for a card_ref search token",
        request=CardRefInputSerializer,
        responses=CardRefSerializer,
        parameters=[OpenApiParameter("card_number", OpenApiTypes.STR, location="query", exclude=True)],
    )
    @action(detail=False, methods=["post"], url_path="card-ref", filterset_class=None, pagination_class=None)
    def card_ref(self, request):
        data = CardRefInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        pan = normalise_pan(data.validated_data["card_number"])
        if not (looks_like_pan(pan) and luhn_valid(pan)):
            raise exceptions.ValidationError({"card_number": [_("This card number is not valid.")]})
        return Response(CardRefSerializer({"card_ref": make_card_ref(pan), "card_masked": mask_pan(pan)}).data)


@extend_schema_view(
    list=extend_schema(
        summary="Merchants the user's organisation may see (an acquirer: its merchants)",
        description=(
            "Ordered by merchant number; the same search as the merchant information page. `code` takes a whole "
            "merchant number (exact) or its first digits (prefix); `name` matches part of the Chinese or English "
            "name, ignoring case; `status` and `mcc` are exact. Invalid input is a 400 naming the field. Limits "
            "are integers in fen (null: no limit); the settlement account is masked."
        ),
    ),
    retrieve=extend_schema(summary="One merchant"),
)
class MerchantViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = MerchantSerializer
    filterset_class = MerchantFilterSet
    required_permission = Perm.MERCHANTS_VIEW

    def get_queryset(self):
        return merchants_visible_to(self.request.user).select_related("merchant_profile")


@extend_schema_view(
    list=extend_schema(summary="Your background downloads, newest first"),
    retrieve=extend_schema(summary="One background download: status and progress"),
)
class ExportJobViewSet(viewsets.ReadOnlyModelViewSet):
    """Background detail downloads of the signed-in user only (anybody else's job is a 404)."""

    serializer_class = ExportJobSerializer
    required_permission = Perm.TRANSACTIONS_EXPORT
    filterset_class = None
    filter_backends: list = []

    def get_queryset(self):
        return export_jobs_of(self.request.user)

    @extend_schema(
        summary="The prepared file of a ready download (audited)",
        responses={(200, "text/csv"): OpenApiTypes.BINARY, (200, XLSX): OpenApiTypes.BINARY},
    )
    @action(detail=True, methods=["get"], url_path="download")
    def download(self, request, pk=None):
        job = self.get_object()
        if job.status != ExportStatus.READY or job.expires_at is None or job.expires_at <= timezone.now():
            raise exceptions.NotFound(_("This download is not ready or has expired."))
        try:
            handle = open(job.path, "rb")  # FileResponse closes it
        except FileNotFoundError as exc:
            raise exceptions.NotFound() from exc
        export_download_record(actor=request.user, job=job)
        response = FileResponse(
            handle, as_attachment=True, filename=job.download_name, content_type=CONTENT_TYPES[job.file_format]
        )
        response["X-Content-Type-Options"] = "nosniff"
        return response
