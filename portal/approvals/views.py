"""The inbox "Waiting for my review" and the decision form's endpoint."""

from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpResponseRedirect
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views import View
from django.views.generic import TemplateView

from portal.accounts.stepup import step_up_url
from portal.core.mixins import PortalPermissionMixin

from . import errors
from .choices import Decision
from .forms import DecisionForm
from .models import ApprovalRequest
from .policies import APPROVER_PERMS
from .registry import describe_request, kind_label
from .selectors import approvals_waiting_for
from .services import approval_decide
from .stepup import otp_verified_at


class ReviewerPermissionMixin(PortalPermissionMixin):
    """Needs any one of the approve permissions (refunds or batches); 403 otherwise."""

    any_of_permissions = APPROVER_PERMS

    @property
    def permission_required(self) -> str:
        user = self.request.user
        held = [p for p in self.any_of_permissions if user.is_authenticated and user.has_portal_perm(p)]
        return held[0] if held else self.any_of_permissions[0]


class InboxView(ReviewerPermissionMixin, TemplateView):
    """Pending requests whose current stage the user may decide, the nearest deadline first."""

    template_name = "approvals/inbox.html"
    paginate_by = 50

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        page = Paginator(approvals_waiting_for(self.request.user), self.paginate_by).get_page(
            self.request.GET.get("page")
        )
        context["page"] = page
        context["rows"] = [
            {"request": req, "kind": kind_label(req.kind), "object": describe_request(req)} for req in page
        ]
        return context


class DecideView(ReviewerPermissionMixin, View):
    """POST a decision on a request's current stage; back to ``next`` (or the object's page) with a message."""

    http_method_names = ["post"]
    model = ApprovalRequest

    def post(self, request, pk: int):
        approval = ApprovalRequest.objects.visible_to(request.user).filter(pk=pk).first()
        if approval is None:
            raise Http404
        form = DecisionForm(request.POST)
        back = self._back_url(request, form, approval)
        if not form.is_valid():
            messages.error(request, _("The decision could not be read: reload the page and try again."))
            return HttpResponseRedirect(back)
        data = form.cleaned_data
        try:
            decided = approval_decide(
                actor=request.user,
                request_id=approval.pk,
                decision=data["decision"],
                reason=data["reason"],
                seen_content_hash=data["seen_content_hash"],
                otp_verified_at=otp_verified_at(request),
                stage_index=data["stage_index"],
            )
        except errors.ApprovalNotFound:
            raise Http404 from None
        except errors.StepUpRequired as exc:
            messages.warning(request, str(exc))
            return HttpResponseRedirect(step_up_url(back))
        except errors.ApprovalError as exc:
            messages.error(request, str(exc))
            return HttpResponseRedirect(back)
        if data["decision"] == Decision.REJECT:
            messages.success(request, _("Rejected. The request is closed."))
        elif decided.status == "approved":
            messages.success(request, _("Approved."))
        else:
            messages.success(request, _("Approved. The next stage is now waiting for its reviewer."))
        return HttpResponseRedirect(back)

    @staticmethod
    def _back_url(request, form: DecisionForm, approval: ApprovalRequest) -> str:
        candidate = form.data.get("next") or ""
        if candidate and url_has_allowed_host_and_scheme(
            candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
        ):
            return candidate
        return describe_request(approval).get("url") or reverse("approvals:inbox")
