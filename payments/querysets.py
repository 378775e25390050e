"""Tenant scoping of the ledger."""

from __future__ import annotations

from django.db import models

from portal.accounts.querysets import scope_by_organisation


class TransactionQuerySet(models.QuerySet):
    def visible_to(self, user) -> TransactionQuerySet:
        """The transactions of the merchants ``user``'s organisation may see."""
        return scope_by_organisation(self, user, field="merchant")


class MerchantProfileQuerySet(models.QuerySet):
    def visible_to(self, user) -> MerchantProfileQuerySet:
        return scope_by_organisation(self, user, field="merchant")


class ExportJobQuerySet(models.QuerySet):
    def visible_to(self, user) -> ExportJobQuerySet:
        """A download belongs to the person who asked for it: nobody else sees it, not even
        colleagues (the filter may reflect their own search)."""
        if not getattr(user, "is_authenticated", False) or not user.is_active:
            return self.none()
        return self.filter(user=user)
