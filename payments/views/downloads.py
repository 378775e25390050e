"""My downloads (background detail downloads) and the download of a prepared file."""

from __future__ import annotations

from django.contrib import messages
from django.http import FileResponse, Http404, HttpResponseRedirect
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.generic import TemplateView, View

from portal.accounts.roles import Perm
from portal.core.mixins import PortalPermissionMixin

from .. import selectors
from ..choices import ExportFormat, ExportStatus
from ..services import ExportError, export_download_record

CONTENT_TYPES = {
    ExportFormat.CSV_UTF8: "text/csv; charset=utf-8",
    ExportFormat.CSV_GBK: "text/csv; charset=GBK",
    ExportFormat.XLSX: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}

ERROR_MESSAGES = {
    ExportError.PERMISSION: gettext_lazy("You no longer have permission to download transactions."),
    ExportError.INVALID_FILTER: gettext_lazy("The search is no longer valid; search and download again."),
    ExportError.TOO_MANY_ROWS: gettext_lazy("The search has too many transactions for one file; narrow it."),
    ExportError.INTERNAL: gettext_lazy("The file could not be prepared. Try again later."),
}

LIST_SIZE = 50


class DownloadListView(PortalPermissionMixin, TemplateView):
    """我的下载: the user's own background downloads, with a progress bar that refreshes (htmx,
    every two seconds) while a job is being prepared."""

    template_name = "payments/downloads.html"
    permission_required = Perm.TRANSACTIONS_EXPORT

    def get_template_names(self):
        if getattr(self.request, "htmx", False):
            return ["payments/_download_rows.html"]
        return [self.template_name]

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        jobs = list(selectors.export_jobs_of(self.request.user)[:LIST_SIZE])
        now = timezone.now()
        for job in jobs:
            job.error_message = ERROR_MESSAGES.get(job.error, "") if job.error else ""
            job.downloadable = job.status == ExportStatus.READY and job.expires_at and job.expires_at > now
        context.update(
            jobs=jobs,
            polling=any(job.status in (ExportStatus.QUEUED, ExportStatus.RUNNING) for job in jobs),
        )
        return context


class DownloadFileView(PortalPermissionMixin, View):
    """The prepared file of the user's own job (anybody else's is a 404); each download is audited."""

    permission_required = Perm.TRANSACTIONS_EXPORT

    def get(self, request, pk):
        job = selectors.export_job_get(request.user, pk)
        expired = job.status == ExportStatus.EXPIRED or (
            job.expires_at is not None and job.expires_at <= timezone.now()
        )
        if expired:
            messages.error(request, _("This download has expired. Search and download again."))
            return HttpResponseRedirect(reverse("payments:downloads"))
        if job.status != ExportStatus.READY:
            raise Http404
        try:
            handle = open(job.path, "rb")  # FileResponse closes it
        except FileNotFoundError as exc:
            raise Http404 from exc
        export_download_record(actor=request.user, job=job)
        response = FileResponse(
            handle, as_attachment=True, filename=job.download_name, content_type=CONTENT_TYPES[job.file_format]
        )
        response["X-Content-Type-Options"] = "nosniff"
        response["Cache-Control"] = "private, no-store"
        return response
