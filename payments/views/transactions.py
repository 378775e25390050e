"""Today's transactions, history, detail and detail download."""

from __future__ import annotations

from django.contrib import messages
from django.http import FileResponse, HttpResponseRedirect, QueryDict, StreamingHttpResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.generic import TemplateView

from portal.accounts.roles import Perm
from portal.core.mixins import PortalPermissionMixin

from .. import exports, selectors, settlement
from ..choices import ExportFormat
from ..context_processors import remember_pending_export
from ..filtersets import TransactionFilterSet
from ..forms import FULL_PAN_INVALID, ExportForm, full_pan_in, search_params, style_filter_form
from ..money import format_yuan
from ..services import export_request, ledger_export_record
from ..tables import TransactionTable


def _bound_filterset(request, mode: str, data=None) -> TransactionFilterSet:
    data = request.GET if data is None else data
    return TransactionFilterSet(
        data.copy(), queryset=selectors.transactions_visible_to(request.user), request=request, mode=mode
    )


def _shows_merchant(user) -> bool:
    return user.organisation.kind != "merchant"


class _TransactionListView(PortalPermissionMixin, TemplateView):
    """A search form (POST, so that a full card number never lands in a URL), then a GET page
    of results: keyset paging, a totals line for the whole filter and the download form."""

    template_name = "payments/transaction_list.html"
    permission_required = Perm.TRANSACTIONS_VIEW
    mode = "history"
    url_name = "payments:history"
    title = ""

    def get(self, request, *args, **kwargs):
        if full_pan_in(request.GET):
            params, error = search_params(request.GET)
            if error:
                messages.error(request, FULL_PAN_INVALID)
            return HttpResponseRedirect(self._url(params))
        return super().get(request, *args, **kwargs)

    def post(self, request, *args, **kwargs):
        params, error = search_params(request.POST, from_form=True)
        if error:
            messages.error(request, error)
        return HttpResponseRedirect(self._url(params))

    def _url(self, params: QueryDict) -> str:
        query = params.urlencode()
        return reverse(self.url_name) + (f"?{query}" if query else "")

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        request = self.request
        filterset = _bound_filterset(request, self.mode)
        show_merchant = _shows_merchant(request.user)
        context.update(filterset=filterset, mode=self.mode, title=self.title, show_merchant=show_merchant)
        valid = filterset.is_valid()
        style_filter_form(filterset.form, card_display=filterset.card_display() if valid else "")
        if self.mode == "today":
            context["settlement_day"] = settlement.current_settlement_day()
        if not valid:
            context["invalid"] = True
            return context
        qs = filterset.qs
        list_qs = qs.only(*selectors.LIST_FIELDS)
        if show_merchant:
            list_qs = qs.select_related("merchant").only(*selectors.LIST_FIELDS, "merchant__code")
        page = selectors.keyset_page(
            list_qs, sort=filterset.sort_order, after=request.GET.get("after"), before=request.GET.get("before")
        )
        totals = selectors.transaction_totals(qs)
        base = request.GET.copy()
        for key in ("after", "before"):
            base.pop(key, None)
        context.update(
            table=TransactionTable.build(page.rows, show_merchant=show_merchant),
            page=page,
            totals=totals,
            totals_amount=format_yuan(totals["amount"]),
            totals_success_amount=format_yuan(totals["success_amount"]),
            next_url=self._page_url(base, "after", page.next_cursor),
            prev_url=self._page_url(base, "before", page.prev_cursor),
            export_params=[(k, v) for k, values in base.lists() for v in values],
            can_export=request.user.has_portal_perm(Perm.TRANSACTIONS_EXPORT),
            applied_dates=(filterset.form.cleaned_data.get("date_from"), filterset.form.cleaned_data.get("date_to")),
        )
        return context

    def _page_url(self, base: QueryDict, key: str, cursor: str | None) -> str | None:
        if not cursor:
            return None
        params = base.copy()
        params[key] = cursor
        return f"{reverse(self.url_name)}?{params.urlencode()}"


class TodayView(_TransactionListView):
    """当日交易查询: the transactions of the current settlement day (T-1 23:00 → T 23:00)."""

    mode = "today"
    url_name = "payments:index"
    title = gettext_lazy("Today's transactions")


class HistoryView(_TransactionListView):
    """历史交易查询: any date range up to one year (default: the last seven days)."""

    mode = "history"
    url_name = "payments:history"
    title = gettext_lazy("Transaction history")


class TransactionDetailView(PortalPermissionMixin, TemplateView):
    """Every field of one transaction, its original payment with all voids and refunds, and
    what can still be refunded until when. Another organisation's transaction is a 404."""

    template_name = "payments/transaction_detail.html"
    permission_required = Perm.TRANSACTIONS_VIEW

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        txn = selectors.transaction_get(self.request.user, kwargs["pk"])
        original, children = selectors.transaction_family(txn)
        # Still refundable subtracts what refunds and batch lines in flight hold, as the refund form does.
        position, in_flight = selectors.refund_position_with_refunds(
            original,
            children,
            user=self.request.user,
            window_days=selectors.merchant_refund_window_days(txn.merchant),
        )
        tz = settlement.business_tz()
        context.update(
            txn=txn,
            original=original,
            children=children,
            position=position,
            in_flight=in_flight,
            remaining_yuan=format_yuan(position.remaining),
            refunded_yuan=format_yuan(position.refunded),
            held_yuan=format_yuan(position.held),
            fields=_detail_fields(txn, tz),
            family=[original, *children],
            show_merchant=_shows_merchant(self.request.user),
            now=timezone.now(),
        )
        return context


def _detail_fields(txn, tz) -> list[tuple[str, str]]:
    local = txn.txn_time.astimezone(tz)
    return [
        (_("Merchant"), f"{txn.merchant.code} {txn.merchant.display_name}"),
        (_("Acquirer"), f"{txn.acquirer.code} {txn.acquirer.display_name}"),
        (_("Order ID"), txn.order_id),
        (_("Transaction time (Beijing)"), local.strftime("%Y-%m-%d %H:%M:%S")),
        (_("Type"), f"{txn.txn_type} {txn.get_txn_type_display()}"),
        (_("Sub-type"), txn.txn_sub_type),
        (_("Product type"), txn.biz_type),
        (_("Channel"), f"{txn.channel_type} {txn.get_channel_type_display()}"),
        (_("Access type"), f"{txn.access_type} {txn.get_access_type_display()}"),
        (_("Amount (yuan)"), format_yuan(txn.amount)),
        (_("Currency"), txn.currency),
        (_("Status"), txn.get_status_display()),
        (_("Response code"), txn.resp_code or "—"),
        (_("Response message"), txn.resp_msg or "—"),
        (_("Query ID"), txn.query_id or "—"),
        (_("Trace number"), txn.trace_no or "—"),
        (_("Trace time"), txn.trace_time or "—"),
        (_("Settlement date"), txn.settle_date.isoformat()),
        (_("Original query ID"), txn.orig_query_id or "—"),
        (_("Card"), txn.card_masked or "—"),
        (_("Card type"), txn.get_card_type_display() if txn.card_type else "—"),
        (_("Merchant reserved field"), txn.req_reserved or "—"),
        (_("Refunded (yuan)"), format_yuan(txn.refunded_amount)),
        (_("Source"), txn.get_source_display()),
        (_("Recorded"), txn.created_at.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S")),
        (_("Updated"), txn.updated_at.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S")),
    ]


class TransactionExportView(PortalPermissionMixin, TemplateView):
    """交易明细下载: the filtered set as CSV or XLSX, streamed, each download audited."""

    permission_required = Perm.TRANSACTIONS_EXPORT

    def get(self, request, *args, **kwargs):
        options = ExportForm(request.GET)
        mode = "today" if request.GET.get("scope") == "today" else "history"
        back_name = "payments:index" if mode == "today" else "payments:history"
        filter_data, _error = search_params(request.GET)
        back = reverse(back_name) + (f"?{filter_data.urlencode()}" if filter_data else "")
        if full_pan_in(request.GET):
            return HttpResponseRedirect(back)
        filterset = _bound_filterset(request, mode, data=filter_data)
        if not options.is_valid() or not filterset.is_valid():
            messages.error(request, _("The download could not be prepared: correct the search first."))
            return HttpResponseRedirect(back)
        qs = filterset.qs
        rows = qs.count()
        if rows == 0:
            messages.warning(request, _("No transactions match this search, so there is nothing to download."))
            return HttpResponseRedirect(back)
        file_format = options.cleaned_data["file_format"]
        encoding = options.cleaned_data.get("encoding") or "utf-8"
        if rows > exports.stream_limit():
            return self._background(request, filterset, rows, file_format, encoding, back)
        ledger_export_record(
            actor=request.user,
            rows=rows,
            file_format=file_format,
            encoding=encoding if file_format == "csv" else "",
            filters=filterset.describe(),
        )
        stamp = timezone.now().astimezone(settlement.business_tz()).strftime("%Y%m%d%H%M%S")
        if file_format == "xlsx":
            return FileResponse(
                exports.xlsx_file(qs, sort=filterset.sort_order),
                as_attachment=True,
                filename=f"transactions_{stamp}.xlsx",
                content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            )
        response = StreamingHttpResponse(
            exports.csv_stream(qs, encoding=encoding, sort=filterset.sort_order),
            content_type=f"text/csv; charset={'GBK' if encoding == 'gbk' else 'utf-8'}",
        )
        response["Content-Disposition"] = f'attachment; filename="transactions_{stamp}.csv"'
        return response

    def _background(self, request, filterset, rows: int, file_format: str, encoding: str, back: str):
        """More rows than stream at once: queue a background job and send the user to My downloads."""
        fmt = job_format(file_format, encoding)
        limit = exports.job_limit(fmt)
        if rows > limit:
            messages.error(
                request,
                _(
                    "This search has %(rows)s transactions; a download can hold at most %(max)s. "
                    "Narrow the search (for example a shorter date range) and download again."
                )
                % {"rows": f"{rows:,}", "max": f"{limit:,}"},
            )
            return HttpResponseRedirect(back)
        job = export_request(
            actor=request.user,
            params=filterset.job_params(),
            fmt=fmt,
            rows_total=rows,
            description=filterset.describe(),
        )
        remember_pending_export(request, job.pk)
        messages.info(
            request,
            _(
                "This search has %(rows)s transactions, more than can be downloaded at once. The file is being "
                "prepared in the background; you will find it under My downloads, kept for 7 days."
            )
            % {"rows": f"{rows:,}"},
        )
        return HttpResponseRedirect(reverse("payments:downloads"))


def job_format(file_format: str, encoding: str) -> str:
    """The background job's format from the download form's format and encoding."""
    if file_format == "xlsx":
        return ExportFormat.XLSX
    return ExportFormat.CSV_GBK if encoding == "gbk" else ExportFormat.CSV_UTF8
