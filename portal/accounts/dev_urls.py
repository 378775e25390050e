"""Developer pages, mounted only when DEBUG is on."""

from django.urls import path

urlpatterns: list = []
