"""The in-portal help, mounted at /help/. The sandbox page is in ``payments.help_urls`` (/help/sandbox/)."""

from django.urls import path

from . import help as views

app_name = "help"

urlpatterns = [
    path("", views.HelpIndexView.as_view(), name="index"),
    path("security/", views.HelpSecurityView.as_view(), name="security"),
    path("transactions/", views.HelpTransactionsView.as_view(), name="transactions"),
    path("refunds/", views.HelpRefundsView.as_view(), name="refunds"),
    path("settlement/", views.HelpSettlementView.as_view(), name="settlement"),
    path("api/", views.HelpApiView.as_view(), name="api"),
]
