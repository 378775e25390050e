from django.urls import path

from . import views

app_name = "gateway"

urlpatterns = [
    path("notify/", views.notify, name="notify"),
]
