"""Generic batch pages, parameterised by kind: upload, list, detail with progress, downloads,
submit and cancel. Another organisation's batch is a 404; a kind's own permissions are checked
on top of the view's (403)."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpResponseRedirect, StreamingHttpResponse
from django.shortcuts import redirect
from django.urls import Resolver404, resolve, reverse
from django.utils.http import content_disposition_header, urlencode
from django.utils.translation import gettext as _
from django.views.generic import TemplateView, View

from portal.accounts.roles import Perm
from portal.audit.services import audit_record
from portal.core.mixins import PortalPermissionMixin

from . import selectors, storage
from .choices import CANCELLABLE, RUNNING, BatchStatus, FileFormat
from .forms import BatchCancelForm, BatchUploadForm
from .models import Batch
from .registry import UnknownKind, get_kind
from .services import BatchError, batch_cancel, batch_original_open, batch_submit, batch_upload
from .uploads import sanitise_name

XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _kind_or_404(code: str):
    try:
        return get_kind(code)
    except UnknownKind:
        raise Http404 from None


class _BatchObjectMixin(PortalPermissionMixin):
    """Loads ``self.batch`` visible to the user (404) and checks the kind's permission (403)."""

    model = Batch
    permission_required = Perm.BATCHES_VIEW
    kind_perm_attr = "view_perm"

    def load(self, request, pk):
        self.batch = selectors.batch_get(request.user, pk)
        self.kind = _kind_or_404(self.batch.kind)
        if not request.user.has_portal_perm(getattr(self.kind, self.kind_perm_attr)):
            raise PermissionDenied
        return self.batch


class BatchListView(PortalPermissionMixin, TemplateView):
    """Batches of the organisations the user may see: status, counts, amounts, progress, maker, times."""

    template_name = "batches/batch_list.html"
    permission_required = Perm.BATCHES_VIEW

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        user = self.request.user
        kind = self.request.GET.get("kind") or None
        page = Paginator(selectors.batches_visible_to(user, kind), 50).get_page(self.request.GET.get("page"))
        kinds = selectors.kinds_visible_to(user)
        context.update(
            page=page,
            kinds=kinds,
            current_kind=kind,
            upload_kinds=[k for k in kinds if user.has_portal_perm(k.upload_perm)],
            labels={k.code: k.label for k in kinds},
        )
        return context


class BatchUploadView(PortalPermissionMixin, TemplateView):
    """Upload a file of the kind named in the URL."""

    template_name = "batches/batch_upload.html"
    permission_required = Perm.BATCHES_UPLOAD

    def dispatch(self, request, *args, **kwargs):
        if request.user.is_authenticated and request.user.is_verified():
            self.kind = _kind_or_404(kwargs["kind"])
        return super().dispatch(request, *args, **kwargs)

    def _check_kind_perm(self):
        if not self.request.user.has_portal_perm(self.kind.upload_perm):
            raise PermissionDenied

    def get(self, request, *args, **kwargs):
        self._check_kind_perm()
        return self.render_to_response(self.get_context_data(form=BatchUploadForm(user=request.user, kind=self.kind)))

    def post(self, request, *args, **kwargs):
        self._check_kind_perm()
        form = BatchUploadForm(request.POST, request.FILES, user=request.user, kind=self.kind)
        status = 400
        if form.is_valid():
            try:
                batch = batch_upload(
                    actor=request.user,
                    kind=self.kind.code,
                    uploaded_file=form.cleaned_data["file"],
                    merchant=form.cleaned_data.get("merchant"),
                )
            except BatchError as exc:
                status = exc.status if exc.status != 404 else 400
                form.add_error("file", exc.message)
                if exc.batch_id and Batch.objects.visible_to(request.user).filter(pk=exc.batch_id).exists():
                    form.earlier_url = reverse("batches:detail", args=[exc.batch_id])
            else:
                messages.success(request, _("The file was uploaded and is being validated."))
                return redirect("batches:detail", pk=batch.pk)
        return self.render_to_response(self.get_context_data(form=form), status=status)

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["kind"] = self.kind
        return context


class BatchDetailView(_BatchObjectMixin, TemplateView):
    """One batch: progress (refreshing itself while running), summary, the error summary (invalid lines
    per code and column), errors (100 a page), a sample of valid lines, history, downloads and the
    actions the user may take. Makers and reviewers see the same page (a kind's review page extends it)."""

    template_name = "batches/batch_detail.html"

    def get(self, request, *args, **kwargs):
        self.load(request, kwargs["pk"])
        return super().get(request, *args, **kwargs)

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        batch, kind, user = self.batch, self.kind, self.request.user
        errors = Paginator(selectors.batch_invalid_lines(batch), selectors.ERRORS_PAGE_SIZE).get_page(
            self.request.GET.get("page")
        )
        can_act = user.has_portal_perm(kind.upload_perm)
        context.update(
            batch=batch,
            kind=kind,
            errors_page=errors,
            error_summary=selectors.batch_error_summary(batch),
            error_rows=[
                (line, kind.column_label(line.error_column), selectors.line_message(batch, line)) for line in errors
            ],
            sample=selectors.batch_sample_lines(batch),
            sample_columns=[(key, kind.column_label(key)) for key in kind.sample_columns],
            history=selectors.batch_status_history(batch),
            file_error=selectors.batch_message(batch),
            line_counts=_line_tabs(selectors.batch_line_counts(batch)),
            can_download_original=selectors.original_download_allowed(user, kind),
            can_submit=can_act and batch.status == BatchStatus.VALIDATED and batch.valid_lines > 0,
            can_cancel=can_act and batch.status in CANCELLABLE,
            cancel_form=BatchCancelForm(),
            **_progress_context(batch),
        )
        return context


def _progress_context(batch: Batch) -> dict:
    return {"running": batch.status in RUNNING, "percent": batch.progress_percent}


def _line_tabs(counts: dict[str, int]) -> list[tuple[str, str, int]]:
    """``[(filter value, label, count)]``: "All" first, then each status filter."""
    return [("", _("All"), counts[""])] + [
        (value, label, counts[value]) for value, label in selectors.line_filter_choices()
    ]


def _int_or_none(value) -> int | None:
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if 0 <= number < 2**31 else None


def _detail_url(request, batch: Batch) -> str:
    """Where the lines page leads back to: the batch page it was opened from (``?back=``, e.g. a kind's own
    batch page) when that is a page of this very batch, else the generic batch page. Never another URL."""
    back = request.GET.get("back", "")
    if back.startswith("/") and not back.startswith("//"):
        try:
            match = resolve(back.split("?")[0])
        except Resolver404:
            match = None
        view_class = getattr(match.func, "view_class", None) if match else None
        if (
            view_class is not None
            and issubclass(view_class, BatchDetailView)
            and str(match.kwargs.get("pk")) == str(batch.pk)
        ):
            return back.split("?")[0]
    return reverse("batches:detail", args=[batch.pk])


class BatchLinesView(_BatchObjectMixin, TemplateView):
    """Every line of a batch, during or after processing: 100 a page by keyset on the line number, filtered
    by status and by an exact order id, each with its amount, status, the kind's error message or the
    gateway's answer, and when it last changed (Beijing time). The tabs carry the count of each status (one
    GROUP BY)."""

    template_name = "batches/batch_lines.html"

    def get(self, request, *args, **kwargs):
        self.load(request, kwargs["pk"])
        return super().get(request, *args, **kwargs)

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        batch, kind, query = self.batch, self.kind, self.request.GET
        status = query.get("status", "")
        if status not in selectors.LINE_FILTERS:
            status = ""
        order_id = query.get("order_id", "").strip()[: selectors.ORDER_ID_MAX]
        counts = selectors.batch_line_counts(batch)
        page = selectors.batch_lines_page(
            batch,
            status=status,
            order_id=order_id,
            after=_int_or_none(query.get("after")),
            before=_int_or_none(query.get("before")),
            counts=counts,
        )
        detail_url = _detail_url(self.request, batch)
        base = {"status": status, "order_id": order_id}
        if detail_url != reverse("batches:detail", args=[batch.pk]):
            base["back"] = detail_url
        context.update(
            batch=batch,
            kind=kind,
            detail_url=detail_url,
            status=status,
            order_id=order_id,
            tabs=[
                (value, label, count, _query({**base, "status": value})) for value, label, count in _line_tabs(counts)
            ],
            page=page,
            rows=[
                (
                    line,
                    line.get_status_display(),
                    selectors.line_outcome(batch, line, kind),
                    kind.column_label(line.error_column) if line.error_column else "",
                )
                for line in page.lines
            ],
            back=base.get("back", ""),
            next_query=_query({**base, "after": page.next_after}) if page.next_after is not None else "",
            previous_query=_query({**base, "before": page.previous_before}) if page.previous_before is not None else "",
            first_query=_query(base) if page.previous_before is not None else "",
        )
        return context


def _query(params: dict) -> str:
    return "?" + urlencode({k: v for k, v in params.items() if v not in ("", None)})


class BatchProgressView(_BatchObjectMixin, TemplateView):
    """The progress fragment the detail page polls every 2 seconds (htmx) while the batch runs."""

    template_name = "batches/_progress.html"

    def get(self, request, *args, **kwargs):
        self.load(request, kwargs["pk"])
        response = super().get(request, *args, **kwargs)
        # Once the batch stopped running, reload the page so that the summary and actions appear.
        if request.headers.get("HX-Request") and self.batch.status not in RUNNING and request.GET.get("was") == "1":
            response["HX-Refresh"] = "true"
        return response

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context.update(batch=self.batch, **_progress_context(self.batch))
        return context


def _download(response: StreamingHttpResponse, filename: str) -> StreamingHttpResponse:
    response["Content-Disposition"] = content_disposition_header(True, filename)
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "no-store"
    return response


class BatchErrorReportView(_BatchObjectMixin, View):
    """The invalid lines as CSV, in the user's language. Audited."""

    def get(self, request, *args, **kwargs):
        batch = self.load(request, kwargs["pk"])
        audit_record(action="batch.download_errors", actor=request.user, obj=batch, details={"kind": batch.kind})
        response = StreamingHttpResponse(selectors.batch_error_report(batch), content_type="text/csv; charset=utf-8")
        return _download(response, f"batch-{batch.pk}-errors.csv")


class BatchResultView(_BatchObjectMixin, View):
    """The result file (回盘) in the upload's format, once written. Audited."""

    def get(self, request, *args, **kwargs):
        batch = self.load(request, kwargs["pk"])
        if not batch.result_name or not storage.exists(batch.result_name):
            raise Http404
        audit_record(action="batch.download_result", actor=request.user, obj=batch, details={"kind": batch.kind})
        stream = storage.open_plaintext(batch.result_name)
        blocks = iter(lambda: stream.read(storage.CHUNK), b"")
        if batch.file_format == FileFormat.XLSX:
            response = StreamingHttpResponse(blocks, content_type=XLSX_TYPE)
            name = f"batch-{batch.pk}-result.xlsx"
        else:
            response = StreamingHttpResponse(blocks, content_type="application/octet-stream")
            name = f"batch-{batch.pk}-result.txt"
        return _download(response, name)


class _Blocks:
    """The blocks of a stream for a streaming response, which closes the stream when it is closed itself
    (also when the client went away, or nothing was read)."""

    def __init__(self, stream):
        self.stream = stream

    def __iter__(self):
        return iter(lambda: self.stream.read(storage.CHUNK), b"")

    def close(self) -> None:
        self.stream.close()


class BatchOriginalView(_BatchObjectMixin, View):
    """The uploaded file as it was uploaded (decrypted from storage, streamed), under its sanitised original
    name, for a user who may see the batch and holds the kind's upload or the review permission; 404 once
    the retention purge deleted it. Audited (``batch.download_original``) by the service."""

    def get(self, request, *args, **kwargs):
        batch = self.load(request, kwargs["pk"])
        try:
            stream = batch_original_open(actor=request.user, batch=batch)
        except BatchError as exc:
            if exc.status == 404:
                raise Http404 from None
            raise
        content_type = XLSX_TYPE if batch.file_format == FileFormat.XLSX else "application/octet-stream"
        response = StreamingHttpResponse(_Blocks(stream), content_type=content_type)
        return _download(response, sanitise_name(batch.original_name))


class _ActionView(_BatchObjectMixin, View):
    http_method_names = ["post"]
    permission_required = Perm.BATCHES_UPLOAD
    kind_perm_attr = "upload_perm"

    def post(self, request, *args, **kwargs):
        batch = self.load(request, kwargs["pk"])
        try:
            self.act(request, batch)
        except BatchError as exc:
            messages.error(request, exc.message)
        except Exception as exc:  # the approval engine's refusals carry a message in the user's language
            from portal.approvals.errors import ApprovalError

            if not isinstance(exc, ApprovalError):
                raise
            messages.error(request, str(exc))
        return HttpResponseRedirect(reverse("batches:detail", args=[batch.pk]))


class BatchSubmitView(_ActionView):
    """Submit a validated batch for review."""

    def act(self, request, batch):
        batch_submit(actor=request.user, batch=batch)
        messages.success(request, _("The batch was submitted for review."))


class BatchCancelView(_ActionView):
    """Cancel a batch until it is approved."""

    def act(self, request, batch):
        form = BatchCancelForm(request.POST)
        reason = form.cleaned_data["reason"] if form.is_valid() else ""
        batch_cancel(actor=request.user, batch=batch, reason=reason)
        messages.success(request, _("The batch was cancelled."))
