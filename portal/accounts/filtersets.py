"""The user FilterSet, shared by the user list page and /api/v1/users/."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import django_filters
from django import forms
from django.conf import settings
from django.db.models import Q, QuerySet
from django.utils.translation import gettext_lazy as _

from .models import User
from .roles import Role


class UserStatus:
    ACTIVE = "active"
    DISABLED = "disabled"
    LOCKED = "locked"

    choices = [(ACTIVE, _("Active")), (DISABLED, _("Disabled")), (LOCKED, _("Locked"))]


def user_list_queryset(actor) -> QuerySet:
    """The users ``actor`` may list (UI and API alike), with what both show and no query per row."""
    from .services import users_manageable_by, with_lock_state

    return (
        with_lock_state(users_manageable_by(actor)).select_related("organisation").prefetch_related("role_assignments")
    )


def _business_midnight(day) -> datetime:
    """Midnight of ``day`` in Beijing time, as an aware datetime."""
    return datetime.combine(day, time.min, tzinfo=ZoneInfo(settings.BUSINESS_TIME_ZONE))


class UserFilterSet(django_filters.FilterSet):
    """Search (username, name, phone), role, status and last sign-in dates (Beijing days).

    The queryset must carry ``recent_failures`` (``services.with_lock_state``) for the status filter.
    """

    q = django_filters.CharFilter(method="filter_q", label=_("Search"))
    role = django_filters.ChoiceFilter(choices=Role.choices, method="filter_role", label=_("Role"))
    status = django_filters.ChoiceFilter(choices=UserStatus.choices, method="filter_status", label=_("Status"))
    last_login_from = django_filters.DateFilter(
        method="filter_last_login_from",
        label=_("Last sign-in from"),
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )
    last_login_to = django_filters.DateFilter(
        method="filter_last_login_to",
        label=_("Last sign-in to"),
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )

    class Meta:
        model = User
        fields: list[str] = []

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        from .forms_users import style_fields

        style_fields(self.form)

    def filter_q(self, queryset, name, value):
        value = value.strip()
        if not value:
            return queryset
        return queryset.filter(
            Q(username__icontains=value)
            | Q(first_name__icontains=value)
            | Q(last_name__icontains=value)
            | Q(phone__icontains=value)
        )

    def filter_role(self, queryset, name, value):
        return queryset.filter(role_assignments__role=value).distinct()

    def filter_status(self, queryset, name, value):
        limit = settings.AXES_FAILURE_LIMIT
        if value == UserStatus.DISABLED:
            return queryset.filter(is_active=False)
        if value == UserStatus.LOCKED:
            return queryset.filter(is_active=True, recent_failures__gte=limit)
        if value == UserStatus.ACTIVE:
            return queryset.filter(is_active=True, recent_failures__lt=limit)
        return queryset

    def filter_last_login_from(self, queryset, name, value):
        return queryset.filter(last_login__gte=_business_midnight(value))

    def filter_last_login_to(self, queryset, name, value):
        # Inclusive: up to the end of that Beijing day.
        return queryset.filter(last_login__lt=_business_midnight(value + timedelta(days=1)))
