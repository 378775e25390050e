"""Tenant scoping of the ledger."""

from __future__ import annotations

from django.db import models

from portal.accounts.querysets import scope_by_organisation


class TransactionQuerySet(models.QuerySet):
    def visible_to(self, user) -> TransactionQuerySet:
        """The transactions of the merchants ``user``'s organisation may see."""
        return scope_by_organisation(self, user, field="merchant")
