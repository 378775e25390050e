"""Forms of the refund pages (amounts typed in yuan, converted to fen at the edge)."""

from __future__ import annotations

from decimal import Decimal

from django import forms
from django.utils.translation import gettext_lazy as _

from payments.money import yuan_to_fen


class RefundForm(forms.Form):
    amount = forms.DecimalField(
        label=_("Amount (yuan)"),
        max_digits=14,
        decimal_places=2,
        min_value=Decimal("0.01"),
        widget=forms.NumberInput(attrs={"class": "form-control", "step": "0.01", "min": "0.01"}),
    )
    reason = forms.CharField(
        label=_("Reason"),
        max_length=255,
        widget=forms.TextInput(attrs={"class": "form-control", "maxlength": "255"}),
    )

    def clean_amount(self) -> int:
        return yuan_to_fen(self.cleaned_data["amount"])


class RefundCancelForm(forms.Form):
    reason = forms.CharField(label=_("Reason"), max_length=255, required=False)
