from django import forms
from django.utils.translation import gettext_lazy as _

from portal.accounts.models import Organisation


class BatchUploadForm(forms.Form):
    """The file, and for an acquirer the merchant it is for (optional when the kind allows several)."""

    file = forms.FileField(label=_("File"), widget=forms.ClearableFileInput(attrs={"class": "form-control"}))
    merchant = forms.ModelChoiceField(
        label=_("Merchant"),
        queryset=Organisation.objects.none(),
        required=False,
        widget=forms.Select(attrs={"class": "form-select"}),
    )

    def __init__(self, *args, user, kind, **kwargs):
        super().__init__(*args, **kwargs)
        if user.organisation.kind == "merchant":
            del self.fields["merchant"]
        else:
            self.fields["merchant"].queryset = Organisation.objects.visible_to(user).merchants().order_by("code")
            self.fields["merchant"].required = kind.requires_merchant
            self.fields["merchant"].empty_label = _("Several merchants (named in the file)")


class BatchCancelForm(forms.Form):
    reason = forms.CharField(label=_("Reason"), max_length=255, required=False)
