from django.urls import path
from django.utils.translation import gettext_lazy as _

from portal.accounts.roles import Perm
from portal.core.views import PlaceholderView

app_name = "payments"

urlpatterns = [
    path(
        "",
        PlaceholderView.as_view(permission_required=Perm.TRANSACTIONS_VIEW, section_title=_("Transactions")),
        name="index",
    ),
    path(
        "batches/",
        PlaceholderView.as_view(permission_required=Perm.BATCHES_VIEW, section_title=_("Batch collection & payout")),
        name="batches",
    ),
]
