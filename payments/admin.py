from django import forms
from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from portal.accounts.roles import Perm

from .cards import normalise_pan
from .models import PRODUCTS, ExportJob, MerchantProfile, Transaction
from .services import merchant_profile_save


@admin.register(Transaction)
class TransactionAdmin(admin.ModelAdmin):
    """Read-only: the ledger changes only through ``payments.services``."""

    list_display = ("order_id", "merchant", "txn_time", "txn_type", "amount", "status", "query_id", "settle_date")
    list_filter = ("status", "txn_type", "source")
    search_fields = ("=order_id", "=query_id")
    list_select_related = ("merchant",)
    raw_id_fields = ("merchant", "acquirer", "orig")
    exclude = ("card_hash",)
    show_full_result_count = False

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class MerchantProfileForm(forms.ModelForm):
    """The settlement account is typed in full and stored masked only (first four, last four)."""

    account_number = forms.CharField(
        label=_("Settlement account number"),
        required=False,
        max_length=40,
        help_text=_("Stored masked; leave empty to keep the current one."),
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )
    products = forms.MultipleChoiceField(
        label=_("Products"), choices=list(PRODUCTS.items()), required=False, widget=forms.CheckboxSelectMultiple
    )

    class Meta:
        model = MerchantProfile
        fields = [
            "merchant",
            "refund_window_days",
            "settlement_bank",
            "products",
            "limit_per_txn",
            "limit_daily",
            "limit_monthly",
        ]

    def clean_account_number(self):
        value = normalise_pan(self.cleaned_data.get("account_number") or "")
        if value and not (value.isdigit() and 8 <= len(value) <= 32):
            raise forms.ValidationError(_("An account number has 8 to 32 digits."))
        return value

    def clean_merchant(self):
        merchant = self.cleaned_data.get("merchant")
        if merchant is not None and merchant.kind != "merchant":
            raise forms.ValidationError(_("A profile belongs to a merchant."))
        return merchant


def _platform_admin(request) -> bool:
    user = request.user
    return bool(user.is_active and user.is_staff and user.has_portal_perm(Perm.POLICIES_MANAGE))


@admin.register(MerchantProfile)
class MerchantProfileAdmin(admin.ModelAdmin):
    """Platform administrators keep merchant profiles here (saved through the service, audited)."""

    form = MerchantProfileForm
    list_display = ("merchant", "refund_window_days", "settlement_account_masked", "updated_at")
    readonly_fields = ("settlement_account_masked", "updated_at")
    search_fields = ("merchant__code", "merchant__name_zh", "merchant__name_en")
    list_select_related = ("merchant",)
    raw_id_fields = ("merchant",)
    actions = None

    def save_model(self, request, obj, form, change):
        merchant_profile_save(
            actor=request.user,
            profile=obj,
            account_number=form.cleaned_data.get("account_number") or "",
            changed=[name for name in form.changed_data if name != "account_number"]
            + (["settlement_account"] if form.cleaned_data.get("account_number") else []),
        )

    def has_module_permission(self, request):
        return _platform_admin(request)

    def has_view_permission(self, request, obj=None):
        return _platform_admin(request)

    def has_add_permission(self, request):
        return _platform_admin(request)

    def has_change_permission(self, request, obj=None):
        return _platform_admin(request)

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(ExportJob)
class ExportJobAdmin(admin.ModelAdmin):
    """Read-only view of background downloads, for support."""

    list_display = ("id", "user", "status", "file_format", "rows_total", "created_at", "expires_at")
    list_filter = ("status", "file_format")
    list_select_related = ("user",)
    exclude = ("params",)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
