"""Tenant scoping of upstream reconciliation: a run and a discrepancy belong to their merchant."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from portal.accounts.querysets import scope_by_organisation


class RunQuerySet(models.QuerySet):
    def visible_to(self, user) -> RunQuerySet:
        """Runs of the merchants ``user`` may see; a failed run of an unknown merchant only to the platform."""
        return scope_by_organisation(self, user, field="merchant")


class DiscrepancyQuerySet(models.QuerySet):
    def visible_to(self, user) -> DiscrepancyQuerySet:
        return scope_by_organisation(self, user, field="merchant")

    def aged(self, days: int, now=None) -> DiscrepancyQuerySet:
        """Not resolved and opened more than ``days`` days ago."""
        limit = (now or timezone.now()) - timezone.timedelta(days=days)
        return self.exclude(status="resolved").filter(created_at__lt=limit)
