from django.urls import path

from . import views

app_name = "refunds"

urlpatterns = [
    path("", views.RefundIndexView.as_view(), name="index"),
    path("new/<int:txn>/", views.RefundCreateView.as_view(), name="create"),
    path("<int:pk>/", views.RefundDetailView.as_view(), name="detail"),
    path("<int:pk>/cancel/", views.RefundCancelView.as_view(), name="cancel"),
    path("batches/<int:pk>/", views.RefundBatchDetailView.as_view(), name="batch_detail"),
    path("format/", views.FormatHelpView.as_view(), name="format_help"),
    path("format/template-<str:lang>.<str:fmt>", views.TemplateDownloadView.as_view(), name="template"),
]
