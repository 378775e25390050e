"""Refund pages: the list (single refunds and batches), the refund / void form from a payment,
a refund's page with its history and review, a refund batch's page with its review, the batch file
format page and the downloadable templates. Another organisation's object is a 404."""

from __future__ import annotations

import io

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.http import content_disposition_header
from django.utils.translation import gettext as _
from django.views.generic import TemplateView, View

from payments.money import format_yuan
from payments.selectors import transaction_get
from portal.accounts.roles import Perm
from portal.batches.views import BatchDetailView
from portal.core.mixins import PortalPermissionMixin

from . import selectors
from .choices import RefundKind, RefundStatus
from .errors import RefundError
from .formats.columns import CHINESE, CHINESE_TEXT_AMOUNT, LABELS, REQUEST_COLUMNS, RESULT_COLUMNS
from .formats.result import text_template, xlsx_template
from .forms import RefundCancelForm, RefundForm
from .services import OBJECT_TYPE, refund_cancel, refund_content_hash, refund_request

XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


class RefundIndexView(PortalPermissionMixin, TemplateView):
    """Single refunds and voids (filter by status) and refund batches, of the visible merchants."""

    template_name = "refunds/index.html"
    permission_required = Perm.REFUNDS_VIEW

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        user, query = self.request.user, self.request.GET
        tab = "batches" if query.get("tab") == "batches" else "refunds"
        status = query.get("status") if query.get("status") in RefundStatus.values else ""
        if tab == "batches":
            rows = selectors.refund_batches_visible_to(user)
        else:
            rows = selectors.refunds_visible_to(user)
            if status:
                rows = rows.filter(status=status)
        context.update(
            tab=tab,
            status=status,
            statuses=RefundStatus.choices,
            page=Paginator(rows, 50).get_page(query.get("page")),
            can_upload=user.has_portal_perm(Perm.BATCHES_UPLOAD),
        )
        return context


class RefundCreateView(PortalPermissionMixin, TemplateView):
    """The refund / void form of one payment: the amount prefilled with what is still refundable,
    and whether a full amount will be a void or a refund."""

    template_name = "refunds/create.html"
    permission_required = Perm.REFUNDS_CREATE

    def setup(self, request, *args, **kwargs):
        super().setup(request, *args, **kwargs)
        self.original = None

    def _load(self):
        self.original = transaction_get(self.request.user, self.kwargs["txn"])
        self.quote = selectors.refund_quote(self.original)

    def get(self, request, *args, **kwargs):
        self._load()
        initial = {"amount": f"{self.quote.refundable / 100:.2f}"} if self.quote.refundable else {}
        return self.render_to_response(self.get_context_data(form=RefundForm(initial=initial)))

    def post(self, request, *args, **kwargs):
        self._load()
        form = RefundForm(request.POST)
        if form.is_valid():
            try:
                refund = refund_request(
                    actor=request.user,
                    original=self.original,
                    amount=form.cleaned_data["amount"],
                    reason=form.cleaned_data["reason"],
                )
            except RefundError as exc:
                if exc.status == 404:
                    raise Http404 from None
                form.add_error(None, exc.message)
            else:
                messages.success(
                    request,
                    _("The %(kind)s of %(amount)s yuan is waiting for review.")
                    % {"kind": refund.get_kind_display().lower(), "amount": format_yuan(refund.amount)},
                )
                return redirect("refunds:detail", pk=refund.pk)
        return self.render_to_response(self.get_context_data(form=form), status=400)

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context.update(
            original=self.original,
            quote=self.quote,
            refundable_yuan=format_yuan(self.quote.refundable),
            full_is_void=self.quote.full_kind == RefundKind.VOID,
        )
        return context


class RefundDetailView(PortalPermissionMixin, TemplateView):
    """One refund: status, amounts, gateway answer, status history and the approval history with the
    decision form for a reviewer who may decide it (step-up code asked for by the engine's page)."""

    template_name = "refunds/detail.html"
    permission_required = Perm.REFUNDS_VIEW

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        refund = selectors.refund_get(self.request.user, kwargs["pk"])
        user = self.request.user
        context.update(
            refund=refund,
            history=list(refund.status_changes.select_related("actor")),
            object_type=OBJECT_TYPE,
            seen_hash=refund_content_hash(refund),
            can_cancel=user.pk == refund.maker_id and refund.status == RefundStatus.PENDING_REVIEW,
            cancel_form=RefundCancelForm(),
        )
        return context


class RefundCancelView(PortalPermissionMixin, View):
    """The maker withdraws a refund still waiting for review."""

    http_method_names = ["post"]
    permission_required = Perm.REFUNDS_CREATE

    def post(self, request, pk):
        refund = selectors.refund_get(request.user, pk)
        form = RefundCancelForm(request.POST)
        reason = form.cleaned_data["reason"] if form.is_valid() else ""
        try:
            refund_cancel(actor=request.user, refund=refund, reason=reason)
        except RefundError as exc:
            if exc.status == 404:
                raise Http404 from None
            if exc.status == 403:
                raise PermissionDenied from None
            messages.error(request, exc.message)
        else:
            messages.success(request, _("The refund was cancelled."))
        return HttpResponseRedirect(reverse("refunds:detail", args=[refund.pk]))


class RefundBatchDetailView(BatchDetailView):
    """The generic batch page of a refund batch, with its review (approval history and decisions)."""

    template_name = "refunds/batch_detail.html"

    def load(self, request, pk):
        batch = super().load(request, pk)
        if batch.kind != selectors.BATCH_KIND:
            raise Http404
        return batch

    def get_context_data(self, **kwargs):
        from portal.batches.approval import OBJECT_TYPE as BATCH_OBJECT_TYPE
        from portal.batches.approval import batch_content_hash

        context = super().get_context_data(**kwargs)
        context.update(batch_object_type=BATCH_OBJECT_TYPE, seen_hash=batch_content_hash(self.batch))
        return context


class FormatHelpView(PortalPermissionMixin, TemplateView):
    """The batch refund file format, text and Excel, with the templates to download."""

    template_name = "refunds/format_help.html"
    permission_required = Perm.REFUNDS_VIEW

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context.update(
            columns=[(key, CHINESE[key], LABELS[key]) for key in REQUEST_COLUMNS],
            result_columns=[(key, CHINESE[key]) for key in RESULT_COLUMNS],
            chinese_text_amount=CHINESE_TEXT_AMOUNT,
        )
        return context


class TemplateDownloadView(PortalPermissionMixin, View):
    """A batch refund template: ``txt`` or ``xlsx``, column names in ``zh`` or ``en``."""

    permission_required = Perm.REFUNDS_VIEW

    def get(self, request, fmt: str, lang: str):
        if lang not in ("zh", "en") or fmt not in ("txt", "xlsx"):
            raise Http404
        if fmt == "txt":
            response = HttpResponse(text_template(lang), content_type="text/plain; charset=utf-8")
        else:
            buf = io.BytesIO()
            xlsx_template(lang, buf)
            response = HttpResponse(buf.getvalue(), content_type=XLSX_TYPE)
        response["Content-Disposition"] = content_disposition_header(True, f"batch-refund-template-{lang}.{fmt}")
        response["X-Content-Type-Options"] = "nosniff"
        return response
