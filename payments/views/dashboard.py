"""The home dashboard's fragment: 30 days of the user's organisation as KPI cards and charts.

The platform's home page loads it by URL name (htmx), so the platform never imports payments.
"""

from __future__ import annotations

from django.views.generic import TemplateView

from portal.accounts.roles import Perm
from portal.core.mixins import PortalPermissionMixin

from .. import charts, selectors
from ..money import format_yuan


class DashboardFragmentView(PortalPermissionMixin, TemplateView):
    template_name = "payments/_dashboard.html"
    permission_required = Perm.TRANSACTIONS_VIEW

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        data = selectors.dashboard_data(self.request.user)
        context.update(
            dashboard=data,
            amount_yuan=format_yuan(data.amount),
            refund_yuan=format_yuan(data.refund_amount),
            charts=charts.dashboard_charts(data),
            first_day=data.days[0].day,
            last_day=data.days[-1].day,
        )
        return context
