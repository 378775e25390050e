"""Tenant scoping of batches: the uploader's organisation, or the merchant the batch is for."""

from __future__ import annotations

from django.db import models

from portal.accounts.querysets import visible_organisation_ids


class BatchQuerySet(models.QuerySet):
    def visible_to(self, user) -> BatchQuerySet:
        """Batches uploaded by an organisation ``user`` may see, or for a merchant it may see
        (so a merchant sees what its acquirer uploaded on its behalf)."""
        ids = visible_organisation_ids(user)
        if ids is None:
            return self
        return self.filter(models.Q(organisation__in=ids) | models.Q(merchant__in=ids))

    def of_kinds(self, codes) -> BatchQuerySet:
        return self.filter(kind__in=list(codes))
