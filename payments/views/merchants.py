"""商户信息查询: an acquirer's merchants (a searchable list, and the detail)."""

from __future__ import annotations

from django.utils.translation import gettext as _
from django.views.generic import TemplateView
from django_tables2 import RequestConfig

from portal.accounts.roles import Perm
from portal.core.mixins import PortalPermissionMixin

from .. import selectors
from ..forms import style_filter_form
from ..merchant_filters import MerchantFilterSet
from ..models import PRODUCTS
from ..money import format_yuan
from ..tables import MerchantTable


class MerchantListView(PortalPermissionMixin, TemplateView):
    """The visible merchants, 50 a page in merchant-number order, narrowed by the search form (GET):
    merchant number (whole or first digits), name, status and MCC. Invalid input shows the form's
    errors and no table."""

    template_name = "payments/merchant_list.html"
    permission_required = Perm.MERCHANTS_VIEW

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        request = self.request
        filterset = MerchantFilterSet(
            request.GET, queryset=selectors.merchants_visible_to(request.user), request=request
        )
        style_filter_form(filterset.form)
        context["filterset"] = filterset
        if not filterset.is_valid():
            context["invalid"] = True
            return context
        searched = any(filterset.form.cleaned_data.get(name) for name in filterset.form.fields)
        table = MerchantTable(filterset.qs, empty_text=_("No merchant matches the search.") if searched else None)
        RequestConfig(request, paginate={"per_page": 50}).configure(table)
        context["table"] = table
        return context


class MerchantDetailView(PortalPermissionMixin, TemplateView):
    """Status, MCC, names, user count and the merchant's profile: settlement account (masked),
    products with their names, limits in yuan and the refund window. Without a profile: dashes."""

    template_name = "payments/merchant_detail.html"
    permission_required = Perm.MERCHANTS_VIEW

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        merchant = selectors.merchant_get(self.request.user, kwargs["pk"])
        context["merchant"] = merchant
        profile = selectors.merchant_profile_of(merchant)
        context["fields"] = [
            (_("Merchant number"), merchant.code),
            (_("Chinese name"), merchant.name_zh),
            (_("English name"), merchant.name_en or "—"),
            (_("Status"), merchant.get_status_display()),
            (_("MCC"), merchant.mcc or "—"),
            (_("Acquirer"), f"{merchant.acquirer.code} {merchant.acquirer.display_name}"),
            (_("Users"), str(merchant.user_count)),
            (_("Settlement account"), _account(profile)),
            (_("Products"), _products(profile)),
            (_("Limit per transaction (yuan)"), _limit(profile, "limit_per_txn")),
            (_("Daily limit (yuan)"), _limit(profile, "limit_daily")),
            (_("Monthly limit (yuan)"), _limit(profile, "limit_monthly")),
            (
                _("Online refund window"),
                _("%(days)s days") % {"days": selectors.merchant_refund_window_days(merchant)},
            ),
            (_("Onboarded"), merchant.created_at.date().isoformat()),
        ]
        return context


def _account(profile) -> str:
    if profile is None or not profile.settlement_account_masked:
        return "—"
    bank = f" ({profile.settlement_bank})" if profile.settlement_bank else ""
    return f"{profile.settlement_account_masked}{bank}"


def _products(profile) -> str:
    if profile is None or not profile.products:
        return "—"
    return "; ".join(f"{code} {PRODUCTS.get(code, '')}".strip() for code in profile.products)


def _limit(profile, name: str) -> str:
    value = getattr(profile, name, None) if profile is not None else None
    return format_yuan(value) if value is not None else _("No limit")
