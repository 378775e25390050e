from django.urls import path

from . import views

app_name = "approvals"

urlpatterns = [
    path("", views.InboxView.as_view(), name="inbox"),
    path("<int:pk>/decide/", views.DecideView.as_view(), name="decide"),
]
