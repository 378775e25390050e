"""The sandbox help page, mounted at /help/sandbox/ only when ``settings.SANDBOX_ENABLED``."""

from django.urls import path

from . import help_views

app_name = "payments_help"

urlpatterns = [
    path("", help_views.SandboxHelpView.as_view(), name="sandbox"),
]
