from django.urls import path
from django.utils.translation import gettext_lazy as _

from portal.accounts.roles import Perm
from portal.core.views import PlaceholderView

from . import views

app_name = "payments"

urlpatterns = [
    path("", views.TodayView.as_view(), name="index"),
    path("history/", views.HistoryView.as_view(), name="history"),
    path("export/", views.TransactionExportView.as_view(), name="export"),
    path("<int:pk>/", views.TransactionDetailView.as_view(), name="detail"),
    path("downloads/", views.DownloadListView.as_view(), name="downloads"),
    path("downloads/<uuid:pk>/", views.DownloadFileView.as_view(), name="download_file"),
    path("dashboard/", views.DashboardFragmentView.as_view(), name="dashboard"),
    path("merchants/", views.MerchantListView.as_view(), name="merchant_list"),
    path("merchants/<int:pk>/", views.MerchantDetailView.as_view(), name="merchant_detail"),
    path(
        "batches/",
        PlaceholderView.as_view(permission_required=Perm.BATCHES_VIEW, section_title=_("Batch collection & payout")),
        name="batches",
    ),
]
