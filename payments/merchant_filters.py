"""The merchant search of an acquirer, shared by the merchant list page and ``/api/v1/merchants/``.

``code`` takes a whole merchant number (15 digits, an exact match) or its first digits (a prefix);
``name`` matches the Chinese or the English name, case-insensitively; ``status`` and ``mcc`` are
exact. The FilterSet only narrows the queryset it is given: scoping to the user's organisation is
the caller's (``selectors.merchants_visible_to``), so a search never reaches another acquirer's
merchant.
"""

from __future__ import annotations

import django_filters
from django.core.validators import RegexValidator
from django.db.models import Q, QuerySet
from django.utils.translation import gettext_lazy as _

from portal.accounts.models import OrganisationStatus

MERCHANT_CODE_LENGTH = 15

_code_validator = RegexValidator(
    r"^[0-9]{1,15}$", _("Enter the merchant number or its first digits (up to 15 digits)."), code="code"
)
_mcc_validator = RegexValidator(r"^[0-9]{4}$", _("An MCC has 4 digits."), code="mcc")


class MerchantFilterSet(django_filters.FilterSet):
    code = django_filters.CharFilter(
        label=_("Merchant number"),
        method="filter_code",
        max_length=MERCHANT_CODE_LENGTH,
        validators=[_code_validator],
        help_text=_("The whole merchant number, or its first digits."),
    )
    name = django_filters.CharFilter(
        label=_("Merchant name"),
        method="filter_name",
        max_length=128,
        help_text=_("Part of the Chinese or English name."),
    )
    status = django_filters.ChoiceFilter(label=_("Status"), choices=OrganisationStatus.choices, empty_label=_("All"))
    mcc = django_filters.CharFilter(label=_("MCC"), max_length=4, validators=[_mcc_validator])

    class Meta:
        fields: list[str] = []

    def filter_code(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        """Exact for a whole merchant number, a prefix for fewer digits."""
        value = value.strip()
        if len(value) == MERCHANT_CODE_LENGTH:
            return queryset.filter(code=value)
        return queryset.filter(code__startswith=value)

    def filter_name(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        """Either name contains ``value``, ignoring case (Latin letters; Chinese has no case)."""
        value = value.strip()
        if not value:
            return queryset
        return queryset.filter(Q(name_zh__icontains=value) | Q(name_en__icontains=value))
