"""Pages of upstream reconciliation: runs, the import form, and the discrepancy workbench (差错处理)."""

from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views import View
from django.views.generic import FormView, TemplateView

from portal.accounts.roles import Perm
from portal.core.mixins import PortalPermissionMixin

from .choices import MATCHED, DiscrepancyClass, DiscrepancyStatus, RunSource, RunStatus
from .filtersets import DiscrepancyFilterSet, RunFilterSet
from .forms import AssignForm, CommentForm, ImportForm, ResolveForm
from .importer import reconciliation_import
from .selectors import discrepancies_visible_to, runs_visible_to
from .services import (
    WorkbenchError,
    discrepancy_assign,
    discrepancy_comment,
    discrepancy_resolve,
    eligible_assignees,
)

PAGE_SIZE = 50


def class_rows(run) -> list[dict]:
    """The run's counts and totals per class, matched first, labelled."""
    labels = {MATCHED: _("Matched"), **{value: str(label) for value, label in DiscrepancyClass.choices}}
    totals = run.class_totals or {}
    return [
        {"key": key, "label": labels[key], **totals.get(key, {"count": 0, "amount": 0})}
        for key in [MATCHED, *DiscrepancyClass.values]
    ]


class RunListView(PortalPermissionMixin, TemplateView):
    permission_required = Perm.SETTLEMENT_VIEW
    template_name = "reconciliation/upstream/run_list.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        filterset = RunFilterSet(self.request.GET, queryset=runs_visible_to(self.request.user))
        page = Paginator(filterset.qs, PAGE_SIZE).get_page(self.request.GET.get("page"))
        context.update(
            filter=filterset, page=page, can_manage=self.request.user.has_portal_perm(Perm.RECONCILIATION_MANAGE)
        )
        return context


class RunDetailView(PortalPermissionMixin, TemplateView):
    permission_required = Perm.SETTLEMENT_VIEW
    template_name = "reconciliation/upstream/run_detail.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        run = get_object_or_404(runs_visible_to(self.request.user), pk=kwargs["pk"])
        context.update(run=run, classes=class_rows(run), completed=run.status == RunStatus.COMPLETED)
        return context


class ImportView(PortalPermissionMixin, FormView):
    permission_required = Perm.RECONCILIATION_MANAGE
    template_name = "reconciliation/upstream/import.html"
    form_class = ImportForm

    def form_valid(self, form):
        upload = form.cleaned_data["file"]
        data = b"".join(upload.chunks())
        run = reconciliation_import(
            actor=self.request.user, source=RunSource.UPLOAD, file_name=upload.name, data=data, now=timezone.now()
        )
        if run.status == RunStatus.COMPLETED:
            messages.success(
                self.request,
                _("Imported %(count)s records of %(day)s.") % {"count": run.record_count, "day": run.settle_date},
            )
            if run.error_count:
                messages.warning(
                    self.request, _("%(count)s malformed lines were not imported.") % {"count": run.error_count}
                )
        else:
            messages.error(self.request, run.error)
        if run.merchant_id is None:  # a failure record of an unknown merchant is not visible to the user
            return HttpResponseRedirect(reverse("reconciliation:upstream_import"))
        return HttpResponseRedirect(reverse("reconciliation:upstream_run_detail", args=[run.pk]))


class DiscrepancyListView(PortalPermissionMixin, TemplateView):
    permission_required = Perm.SETTLEMENT_VIEW
    template_name = "reconciliation/upstream/discrepancy_list.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        filterset = DiscrepancyFilterSet(self.request.GET, queryset=discrepancies_visible_to(self.request.user))
        page = Paginator(filterset.qs, PAGE_SIZE).get_page(self.request.GET.get("page"))
        now = timezone.now()
        rows = [{"d": d, "aged": d.is_aged(now)} for d in page]
        query = self.request.GET.copy()
        query.pop("page", None)
        context.update(filter=filterset, page=page, rows=rows, query=query.urlencode())
        return context


class DiscrepancyDetailView(PortalPermissionMixin, TemplateView):
    permission_required = Perm.SETTLEMENT_VIEW
    template_name = "reconciliation/upstream/discrepancy_detail.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        user = self.request.user
        discrepancy = get_object_or_404(
            discrepancies_visible_to(user).select_related("record", "transaction"), pk=kwargs["pk"]
        )
        can_manage = user.has_portal_perm(Perm.RECONCILIATION_MANAGE)
        open_ = discrepancy.status in (DiscrepancyStatus.OPEN, DiscrepancyStatus.ASSIGNED)
        context.update(
            d=discrepancy,
            aged=discrepancy.is_aged(),
            comments=discrepancy.comments.select_related("author"),
            can_manage=can_manage,
            can_act=can_manage and open_,
            assign_form=AssignForm(people=eligible_assignees(discrepancy)) if can_manage and open_ else None,
            comment_form=CommentForm(),
            resolve_form=ResolveForm(),
        )
        return context


class DiscrepancyActionView(PortalPermissionMixin, View):
    """POST assign / comment / resolve, then back to the detail page with a message."""

    permission_required = Perm.RECONCILIATION_MANAGE
    http_method_names = ["post"]

    def post(self, request, pk: int, action: str):
        discrepancy = get_object_or_404(discrepancies_visible_to(request.user), pk=pk)
        try:
            if action == "assign":
                form = AssignForm(request.POST, people=eligible_assignees(discrepancy))
                if not form.is_valid():
                    raise WorkbenchError(_("Choose a person to assign."))
                discrepancy_assign(
                    actor=request.user, discrepancy=discrepancy, assignee=form.people[form.cleaned_data["assignee"]]
                )
                messages.success(request, _("Assigned."))
            elif action == "comment":
                form = CommentForm(request.POST)
                if not form.is_valid():
                    raise WorkbenchError(_("Write a comment first."))
                discrepancy_comment(actor=request.user, discrepancy=discrepancy, body=form.cleaned_data["body"])
                messages.success(request, _("Comment added."))
            elif action == "resolve":
                form = ResolveForm(request.POST)
                if not form.is_valid():
                    raise WorkbenchError(_("Choose how to resolve the discrepancy."))
                discrepancy_resolve(
                    actor=request.user,
                    discrepancy=discrepancy,
                    resolution=form.cleaned_data["resolution"],
                    reason=form.cleaned_data["reason"],
                )
                if discrepancy.status == DiscrepancyStatus.PENDING_APPROVAL:
                    messages.success(request, _("Sent for approval: a second person must approve the adjustment."))
                else:
                    messages.success(request, _("Resolved."))
            else:
                raise Http404
        except WorkbenchError as exc:
            messages.error(request, str(exc))
        except Exception as exc:  # approval engine refusals (duplicate pending request, no policy)
            from portal.approvals.errors import ApprovalError

            if not isinstance(exc, ApprovalError):
                raise
            messages.error(request, str(exc))
        return HttpResponseRedirect(reverse("reconciliation:upstream_discrepancy_detail", args=[discrepancy.pk]))
