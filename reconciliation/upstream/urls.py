"""Included by ``reconciliation.urls`` under ``upstream/`` (names live in the ``reconciliation`` namespace)."""

from django.urls import path

from . import views

urlpatterns = [
    path("", views.RunListView.as_view(), name="upstream_run_list"),
    path("import/", views.ImportView.as_view(), name="upstream_import"),
    path("runs/<int:pk>/", views.RunDetailView.as_view(), name="upstream_run_detail"),
    path("discrepancies/", views.DiscrepancyListView.as_view(), name="upstream_discrepancy_list"),
    path("discrepancies/<int:pk>/", views.DiscrepancyDetailView.as_view(), name="upstream_discrepancy_detail"),
    path(
        "discrepancies/<int:pk>/<slug:action>/",
        views.DiscrepancyActionView.as_view(),
        name="upstream_discrepancy_action",
    ),
]
