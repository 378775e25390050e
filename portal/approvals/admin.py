"""Platform administrators edit approval policies in the Django admin (through the service, audited)."""

from django import forms
from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from .models import ApprovalPolicy
from .policies import validate_stages
from .services import approval_policy_save


class ApprovalPolicyForm(forms.ModelForm):
    class Meta:
        model = ApprovalPolicy
        fields = ["kind", "organisation", "stages", "is_active"]

    def clean_stages(self):
        return validate_stages(self.cleaned_data.get("stages"))

    def clean_organisation(self):
        organisation = self.cleaned_data.get("organisation")
        if organisation is not None and organisation.kind not in {"merchant", "acquirer"}:
            raise forms.ValidationError(_("A policy belongs to a merchant or an acquirer, or to nobody (the default)."))
        return organisation


@admin.register(ApprovalPolicy)
class ApprovalPolicyAdmin(admin.ModelAdmin):
    form = ApprovalPolicyForm
    list_display = ("kind", "organisation", "is_active", "updated_by", "updated_at")
    list_filter = ("kind", "is_active")
    readonly_fields = ("updated_by", "updated_at")
    actions = None

    def save_model(self, request, obj, form, change):
        approval_policy_save(actor=request.user, policy=obj)

    def has_delete_permission(self, request, obj=None):
        # Deactivate instead: snapshots keep the policy id.
        return False
