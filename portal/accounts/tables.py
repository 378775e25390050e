"""The user list table (django-tables2)."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import django_tables2 as tables
from django.conf import settings
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _

from .models import User
from .roles import Role

_ROLE_LABELS = dict(Role.choices)


def user_status(user: User) -> tuple[str, str]:
    """``(code, label)`` of the user's status: disabled, locked or active."""
    from .filtersets import UserStatus

    labels = dict(UserStatus.choices)
    if not user.is_active:
        return UserStatus.DISABLED, labels[UserStatus.DISABLED]
    if getattr(user, "recent_failures", 0) >= settings.AXES_FAILURE_LIMIT:
        return UserStatus.LOCKED, labels[UserStatus.LOCKED]
    return UserStatus.ACTIVE, labels[UserStatus.ACTIVE]


_STATUS_BADGE = {"active": "text-bg-success", "disabled": "text-bg-secondary", "locked": "text-bg-danger"}


class UserTable(tables.Table):
    username = tables.Column(
        verbose_name=_("Username"), linkify=lambda record: reverse("accounts:user_detail", args=[record.pk])
    )
    name = tables.Column(verbose_name=_("Name"), accessor="last_name", order_by=("last_name", "first_name"))
    organisation = tables.Column(verbose_name=_("Organisation"), order_by=("organisation__code",))
    roles = tables.Column(verbose_name=_("Roles"), accessor="pk", orderable=False)
    status = tables.Column(verbose_name=_("Status"), accessor="is_active", orderable=False)
    last_login = tables.Column(verbose_name=_("Last sign-in (Beijing time)"))
    phone = tables.Column(verbose_name=_("Mobile phone"), orderable=False)

    class Meta:
        model = User
        fields = ("username", "name", "organisation", "roles", "status", "last_login", "phone")
        template_name = "django_tables2/bootstrap5-responsive.html"
        attrs = {"class": "table table-sm table-hover align-middle", "data-testid": "user-table"}
        empty_text = _("No users match.")
        order_by = ("username",)

    def render_name(self, record: User) -> str:
        return record.get_full_name() or "—"

    def render_organisation(self, value) -> str:
        return value.display_name

    def render_roles(self, record: User):
        # role_assignments are prefetched: no query per row.
        codes = sorted(a.role for a in record.role_assignments.all())
        return format_html_join(
            " ", '<span class="badge text-bg-light border">{}</span>', ((_ROLE_LABELS.get(c, c),) for c in codes)
        )

    def render_status(self, record: User):
        code, label = user_status(record)
        return format_html('<span class="badge {}" data-status="{}">{}</span>', _STATUS_BADGE[code], code, label)

    def render_last_login(self, value) -> str:
        return timezone.localtime(value, ZoneInfo(settings.BUSINESS_TIME_ZONE)).strftime("%Y-%m-%d %H:%M")

    def render_phone(self, record: User) -> str:
        return record.masked_phone or "—"
