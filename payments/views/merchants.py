"""商户信息查询: an acquirer's merchants (list and detail)."""

from __future__ import annotations

from django.utils.translation import gettext as _
from django.views.generic import TemplateView
from django_tables2 import RequestConfig

from portal.accounts.roles import Perm
from portal.core.mixins import PortalPermissionMixin

from .. import selectors
from ..tables import MerchantTable


class MerchantListView(PortalPermissionMixin, TemplateView):
    template_name = "payments/merchant_list.html"
    permission_required = Perm.MERCHANTS_VIEW

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        table = MerchantTable(selectors.merchants_visible_to(self.request.user))
        RequestConfig(self.request, paginate={"per_page": 50}).configure(table)
        context["table"] = table
        return context


class MerchantDetailView(PortalPermissionMixin, TemplateView):
    """Status, MCC, names and user count. Settlement account, products and limits are not held
    by the portal yet and show a dash."""

    template_name = "payments/merchant_detail.html"
    permission_required = Perm.MERCHANTS_VIEW

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        merchant = selectors.merchant_get(self.request.user, kwargs["pk"])
        context["merchant"] = merchant
        context["fields"] = [
            (_("Merchant number"), merchant.code),
            (_("Chinese name"), merchant.name_zh),
            (_("English name"), merchant.name_en or "—"),
            (_("Status"), merchant.get_status_display()),
            (_("MCC"), merchant.mcc or "—"),
            (_("Acquirer"), f"{merchant.acquirer.code} {merchant.acquirer.display_name}"),
            (_("Users"), str(merchant.user_count)),
            (_("Settlement account"), "—"),
            (_("Products"), "—"),
            (_("Limits"), "—"),
            (_("Onboarded"), merchant.created_at.date().isoformat()),
        ]
        return context
