"""The one FilterSet of the audit log, shared by the pages, the CSV export and the REST API."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import django_filters
from django import forms
from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from portal.accounts.models import Organisation

from .models import AuditEvent, AuditOutcome

# Query parameters that are not filters: paging and the export format.
NON_FILTER_PARAMS = frozenset({"page", "page_size", "format"})


class BeijingDateTimeField(forms.DateTimeField):
    """A date and time typed in Beijing time (an explicit offset, as API clients send, wins)."""

    widget = forms.DateTimeInput(attrs={"type": "datetime-local", "step": "1"}, format="%Y-%m-%dT%H:%M:%S")

    def prepare_value(self, value):
        if hasattr(value, "astimezone") and timezone.is_aware(value):
            value = timezone.make_naive(value, ZoneInfo(settings.BUSINESS_TIME_ZONE))
        return super().prepare_value(value)

    def clean(self, value):
        # DateTimeField.to_python makes a naive value aware in the *current* time zone (UTC
        # here); read it in Beijing time instead, so that it means what the user typed.
        with timezone.override(ZoneInfo(settings.BUSINESS_TIME_ZONE)):
            return super().clean(value)


class BeijingDateTimeFilter(django_filters.DateTimeFilter):
    field_class = BeijingDateTimeField


class IPFilter(django_filters.CharFilter):
    """An exact IP address; anything else is a validation error, not a database error."""

    field_class = forms.GenericIPAddressField


def _visible_organisations(request):
    if request is None:
        return Organisation.objects.none()
    return Organisation.objects.visible_to(request.user).order_by("kind", "code")


class AuditEventFilterSet(django_filters.FilterSet):
    """Time range (Beijing time), actor, action, organisation, object, outcome and IP.

    The organisation choices are the organisations the requesting user may see; the queryset the
    filter narrows is already scoped with ``visible_to``, so a filter can never widen it.
    """

    time_after = BeijingDateTimeFilter(field_name="occurred_at", lookup_expr="gte", label=_("From (Beijing time)"))
    time_before = BeijingDateTimeFilter(field_name="occurred_at", lookup_expr="lt", label=_("Until (Beijing time)"))
    actor = django_filters.CharFilter(field_name="actor_repr", lookup_expr="icontains", label=_("Actor"))
    action = django_filters.CharFilter(
        method="filter_action",
        label=_("Action"),
        help_text=_("An exact action such as user.create, or a prefix ending in * such as auth.*"),
    )
    organisation = django_filters.ModelChoiceFilter(
        queryset=_visible_organisations, to_field_name="code", label=_("Organisation")
    )
    object_type = django_filters.CharFilter(field_name="object_type", lookup_expr="exact", label=_("Object type"))
    object_id = django_filters.CharFilter(field_name="object_id", lookup_expr="exact", label=_("Object id"))
    outcome = django_filters.ChoiceFilter(choices=AuditOutcome.choices, label=_("Outcome"))
    ip = IPFilter(field_name="ip", lookup_expr="exact", label=_("IP address"))

    class Meta:
        model = AuditEvent
        fields = [
            "time_after",
            "time_before",
            "actor",
            "action",
            "organisation",
            "object_type",
            "object_id",
            "outcome",
            "ip",
        ]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for field in self.form.fields.values():
            css = (
                "form-select form-select-sm"
                if isinstance(field.widget, forms.Select)
                else "form-control form-control-sm"
            )
            field.widget.attrs.setdefault("class", css)
        self.form.fields["action"].widget.attrs["list"] = "audit-actions"

    def filter_action(self, queryset, name, value):
        if value.endswith("*"):
            return queryset.filter(action__startswith=value[:-1])
        return queryset.filter(action=value)

    def applied_filters(self) -> dict[str, str]:
        """The filters in the query string that have a value, as typed (for the audit event)."""
        return {
            name: self.data.get(name)
            for name in self.filters
            if name not in NON_FILTER_PARAMS and self.data.get(name) not in (None, "")
        }
