"""Settlement overview, download centre (对账文件下载), monthly statements (月账单) and file download."""

from __future__ import annotations

from datetime import date

from django.core.paginator import Paginator
from django.http import FileResponse
from django.utils.translation import get_language
from django.views.generic import TemplateView, View

from portal.accounts.roles import Perm
from portal.core.mixins import PortalPermissionMixin

from . import selectors
from .choices import ACQUIRER_KINDS, DAILY_MERCHANT_KINDS, FileKind
from .services import reconciliation_file_download

CONTENT_TYPES = {
    "zip": "application/zip",
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "pdf": "application/pdf",
}
DAYS_PER_PAGE = 10


def _parse_day(value: str | None) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


class SettlementOverviewView(PortalPermissionMixin, TemplateView):
    """Closed settlement days with each visible merchant's totals (an acquirer sees all its merchants and its own
    totals), newest first, ten days a page."""

    template_name = "reconciliation/overview.html"
    permission_required = Perm.SETTLEMENT_VIEW

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        user = self.request.user
        lines = selectors.settlements_visible_to(user)
        day = _parse_day(self.request.GET.get("day"))
        if day:
            lines = lines.filter(day=day)
        days = Paginator(lines.order_by("-day").values_list("day", flat=True).distinct(), DAYS_PER_PAGE)
        page = days.get_page(self.request.GET.get("page"))
        shown = list(page.object_list)
        by_day: dict[date, list] = {d: [] for d in shown}
        for line in lines.filter(day__in=shown).order_by("-day", "merchant__code"):
            by_day[line.day].append(line)
        acquirer_totals = {
            row.day: row for row in selectors.acquirer_settlements_visible_to(user).filter(day__in=shown)
        }
        context.update(
            days=[(d, by_day[d], acquirer_totals.get(d)) for d in shown],
            page_obj=page,
            day=day,
            active="overview",
        )
        return context


class FileListView(PortalPermissionMixin, TemplateView):
    """The download centre: daily files by date and type, with size and SHA-256."""

    template_name = "reconciliation/files.html"
    permission_required = Perm.SETTLEMENT_VIEW
    kinds = DAILY_MERCHANT_KINDS + ACQUIRER_KINDS
    active = "files"

    def base_queryset(self):
        return selectors.files_visible_to(self.request.user, language=get_language()).filter(kind__in=self.kinds)

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        files = self.base_queryset()
        kind = self.request.GET.get("kind")
        if kind in self.kinds:
            files = files.filter(kind=kind)
        day = _parse_day(self.request.GET.get("day"))
        if day:
            files = files.filter(day=day) if self.active == "files" else files.filter(month=day.replace(day=1))
        page = Paginator(files, 50).get_page(self.request.GET.get("page"))
        context.update(
            files=page.object_list,
            page_obj=page,
            kind_choices=[(k, FileKind(k).label) for k in self.kinds],
            kind=kind,
            day=day,
            active=self.active,
        )
        return context


class StatementListView(FileListView):
    """Monthly statements (月账单), XLSX and PDF."""

    template_name = "reconciliation/statements.html"
    kinds = (FileKind.STATEMENT_XLSX, FileKind.STATEMENT_PDF)
    active = "statements"


class FileDownloadView(PortalPermissionMixin, View):
    """One file (another organisation's is a 404); produced again if missing on disk; every download audited."""

    permission_required = Perm.SETTLEMENT_VIEW

    def get(self, request, pk: int):
        file = selectors.file_get(request.user, pk)
        path = reconciliation_file_download(actor=request.user, file=file)
        extension = file.name.rsplit(".", 1)[-1]
        response = FileResponse(
            open(path, "rb"),  # FileResponse closes it
            as_attachment=True,
            filename=file.name,
            content_type=CONTENT_TYPES.get(extension, "application/octet-stream"),
        )
        response["X-Content-Type-Options"] = "nosniff"
        response["Cache-Control"] = "private, no-store"
        return response
