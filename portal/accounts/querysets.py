"""Tenant scoping: every queryset a user can reach goes through ``visible_to(user)``."""

from __future__ import annotations

from django.db import models


def visible_organisation_ids(user) -> models.QuerySet | None:
    """The organisation ids ``user`` may see, or None for the whole platform.

    A merchant sees itself; an acquirer sees itself and the merchants it acquires;
    the platform organisation sees everyone. An inactive or anonymous user sees nothing.
    """
    from .models import Organisation, OrganisationKind

    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return Organisation.objects.none().values("pk")
    org = user.organisation
    if org.kind == OrganisationKind.PLATFORM:
        return None
    if org.kind == OrganisationKind.ACQUIRER:
        return Organisation.objects.filter(models.Q(pk=org.pk) | models.Q(acquirer_id=org.pk)).values("pk")
    return Organisation.objects.filter(pk=org.pk).values("pk")


def scope_by_organisation(qs: models.QuerySet, user, field: str = "organisation") -> models.QuerySet:
    """Restrict ``qs`` to rows whose ``field`` is an organisation ``user`` may see."""
    ids = visible_organisation_ids(user)
    if ids is None:
        return qs
    return qs.filter(**{f"{field}__in": ids})


class OrganisationQuerySet(models.QuerySet):
    def visible_to(self, user) -> OrganisationQuerySet:
        return scope_by_organisation(self, user, field="pk")

    def merchants(self) -> OrganisationQuerySet:
        return self.filter(kind="merchant")


class UserQuerySet(models.QuerySet):
    def visible_to(self, user) -> UserQuerySet:
        return scope_by_organisation(self, user)
