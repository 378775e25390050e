"""The audit log list as a django-tables2 table."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import django_tables2 as tables
from django.conf import settings
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from .models import AuditEvent, AuditOutcome

OUTCOME_BADGES = {
    AuditOutcome.SUCCESS: "text-bg-success",
    AuditOutcome.FAILURE: "text-bg-warning",
    AuditOutcome.DENIED: "text-bg-danger",
}


def beijing(value):
    return timezone.localtime(value, ZoneInfo(settings.BUSINESS_TIME_ZONE))


def time_cell(value):
    """Beijing time on screen, UTC in the title (hover) and in the machine-readable attribute."""
    utc = value.astimezone(timezone.UTC)
    return format_html(
        '<time datetime="{}" title="{} UTC">{}</time>',
        utc.isoformat(timespec="seconds"),
        utc.strftime("%Y-%m-%d %H:%M:%S"),
        beijing(value).strftime("%Y-%m-%d %H:%M:%S"),
    )


def outcome_badge(event: AuditEvent):
    return format_html(
        '<span class="badge {}" data-outcome="{}">{}</span>',
        OUTCOME_BADGES.get(event.outcome, "text-bg-secondary"),
        event.outcome,
        event.get_outcome_display(),
    )


class AuditEventTable(tables.Table):
    sequence = tables.Column(verbose_name=_("Seq."), attrs={"td": {"class": "text-end font-monospace"}})
    occurred_at = tables.Column(verbose_name=_("Time (Beijing)"))
    actor_repr = tables.Column(verbose_name=_("Actor"), default="—")
    organisation = tables.Column(verbose_name=_("Organisation"), accessor="organisation__code", default="—")
    action = tables.Column(verbose_name=_("Action"), attrs={"td": {"class": "font-monospace small"}})
    object = tables.Column(verbose_name=_("Object"), accessor="object_type", empty_values=())
    outcome = tables.Column(verbose_name=_("Outcome"))
    ip = tables.Column(verbose_name=_("IP address"), default="—")

    class Meta:
        model = AuditEvent
        fields = ("sequence", "occurred_at", "actor_repr", "organisation", "action", "object", "outcome", "ip")
        orderable = False
        template_name = "django_tables2/bootstrap5-responsive.html"
        attrs = {"class": "table table-sm table-hover align-middle", "data-testid": "audit-table"}
        row_attrs = {"data-sequence": lambda record: record.sequence}
        empty_text = _("No audit events match these filters.")

    def render_sequence(self, value):
        return format_html('<a href="{}">{}</a>', reverse("audit:event_detail", args=[value]), value)

    def render_occurred_at(self, value):
        return time_cell(value)

    def render_object(self, record):
        if not record.object_type:
            return "—"
        if record.object_id:
            return format_html('<span class="small">{}</span> #{}', record.object_type, record.object_id)
        return format_html('<span class="small">{}</span>', record.object_type)

    def render_outcome(self, record):
        return outcome_badge(record)
