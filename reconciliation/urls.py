from django.urls import include, path

from . import views

app_name = "reconciliation"

urlpatterns = [
    path("", views.SettlementOverviewView.as_view(), name="index"),
    path("files/", views.FileListView.as_view(), name="files"),
    path("statements/", views.StatementListView.as_view(), name="statements"),
    path("files/<int:pk>/download/", views.FileDownloadView.as_view(), name="file_download"),
    # Upstream import, matching and discrepancies (reconciliation.upstream) plug in below.
    path("upstream/", include("reconciliation.upstream.urls")),
]
