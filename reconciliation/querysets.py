"""Tenant scoping of settlement results and generated files."""

from __future__ import annotations

from django.db import models

from portal.accounts.querysets import scope_by_organisation


class MerchantSettlementQuerySet(models.QuerySet):
    def visible_to(self, user) -> MerchantSettlementQuerySet:
        """The settlement lines of the merchants ``user``'s organisation may see."""
        return scope_by_organisation(self, user, field="merchant")


class AcquirerSettlementQuerySet(models.QuerySet):
    def visible_to(self, user) -> AcquirerSettlementQuerySet:
        """An acquirer's totals: its own people (and the platform) only; merchants never see them."""
        return scope_by_organisation(self, user, field="acquirer")


class ReconciliationFileQuerySet(models.QuerySet):
    def visible_to(self, user) -> ReconciliationFileQuerySet:
        """Files of the organisations ``user`` may see (a merchant never sees its acquirer's files)."""
        return scope_by_organisation(self, user, field="organisation")
