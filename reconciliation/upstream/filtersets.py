"""The one FilterSet of the discrepancy workbench, shared by the page and the REST API."""

from __future__ import annotations

import django_filters
from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .choices import DiscrepancyClass, DiscrepancyStatus, RunStatus
from .models import Discrepancy, ReconciliationRun


class DiscrepancyFilterSet(django_filters.FilterSet):
    cls = django_filters.ChoiceFilter(label=_("Class"), choices=DiscrepancyClass.choices)
    status = django_filters.ChoiceFilter(label=_("Status"), choices=DiscrepancyStatus.choices)
    merchant = django_filters.CharFilter(label=_("Merchant number"), field_name="merchant__code")
    date = django_filters.DateFilter(label=_("Settlement date"), field_name="settle_date")
    assignee = django_filters.CharFilter(label=_("Assignee (user name)"), field_name="assignee__username")
    run = django_filters.NumberFilter(label=_("Run"), field_name="run_id")
    aged = django_filters.BooleanFilter(label=_("Aged only"), method="filter_aged")

    class Meta:
        model = Discrepancy
        fields = ["cls", "status", "merchant", "date", "assignee", "run", "aged"]

    def filter_aged(self, queryset, name, value):
        if not value:
            return queryset
        return queryset.aged(settings.RECON_DISCREPANCY_AGE_DAYS, now=timezone.now())


class RunFilterSet(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(label=_("Status"), choices=RunStatus.choices)
    merchant = django_filters.CharFilter(label=_("Merchant number"), field_name="merchant__code")
    date = django_filters.DateFilter(label=_("Settlement date"), field_name="settle_date")

    class Meta:
        model = ReconciliationRun
        fields = ["status", "merchant", "date"]
