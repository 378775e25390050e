"""Tenant scoping of refunds."""

from __future__ import annotations

from django.db import models

from portal.accounts.querysets import scope_by_organisation


class RefundQuerySet(models.QuerySet):
    def visible_to(self, user) -> RefundQuerySet:
        """Refunds of the merchants ``user``'s organisation may see (an acquirer: its merchants')."""
        return scope_by_organisation(self, user, field="merchant")
