"""Reads of upstream reconciliation, always scoped to the user."""

from __future__ import annotations

from django.db.models import QuerySet

from .models import Discrepancy, ReconciliationRun


def runs_visible_to(user) -> QuerySet[ReconciliationRun]:
    return ReconciliationRun.objects.visible_to(user).select_related("merchant", "created_by")


def discrepancies_visible_to(user) -> QuerySet[Discrepancy]:
    return Discrepancy.objects.visible_to(user).select_related("merchant", "assignee", "run")
