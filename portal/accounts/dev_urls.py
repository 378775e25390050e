"""Developer pages, mounted only when DEBUG is on."""

from django.urls import path

from . import dev_views

app_name = "dev"

urlpatterns: list = [
    path("sms-outbox/", dev_views.sms_outbox, name="sms_outbox"),
]
