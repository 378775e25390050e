"""Reads of settlement results and generated files, always scoped to the user (404 across tenants)."""

from __future__ import annotations

from django.db.models import Q, QuerySet
from django.shortcuts import get_object_or_404

from .models import AcquirerSettlement, MerchantSettlement, ReconciliationFile


def settlements_visible_to(user) -> QuerySet[MerchantSettlement]:
    return MerchantSettlement.objects.visible_to(user).select_related("merchant", "acquirer")


def acquirer_settlements_visible_to(user) -> QuerySet[AcquirerSettlement]:
    return AcquirerSettlement.objects.visible_to(user).select_related("acquirer")


def files_visible_to(user, *, language: str | None = None) -> QuerySet[ReconciliationFile]:
    """Files the user may download; with ``language``, the network zip plus the friendly files in that language."""
    qs = ReconciliationFile.objects.visible_to(user).select_related("organisation")
    if language:
        qs = qs.filter(Q(language="") | Q(language=language))
    return qs


def file_get(user, pk: int) -> ReconciliationFile:
    return get_object_or_404(ReconciliationFile.objects.visible_to(user).select_related("organisation"), pk=pk)
