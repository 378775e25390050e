from django.urls import path

from . import views

app_name = "batches"

urlpatterns = [
    path("", views.BatchListView.as_view(), name="list"),
    path("upload/<slug:kind>/", views.BatchUploadView.as_view(), name="upload"),
    path("<int:pk>/", views.BatchDetailView.as_view(), name="detail"),
    path("<int:pk>/progress/", views.BatchProgressView.as_view(), name="progress"),
    path("<int:pk>/lines/", views.BatchLinesView.as_view(), name="lines"),
    path("<int:pk>/original/", views.BatchOriginalView.as_view(), name="original"),
    path("<int:pk>/errors.csv", views.BatchErrorReportView.as_view(), name="error_report"),
    path("<int:pk>/result/", views.BatchResultView.as_view(), name="result"),
    path("<int:pk>/submit/", views.BatchSubmitView.as_view(), name="submit"),
    path("<int:pk>/cancel/", views.BatchCancelView.as_view(), name="cancel"),
]
