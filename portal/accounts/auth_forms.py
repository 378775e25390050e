"""Forms of the sign-in flow, the password change and the second-factor settings."""

from __future__ import annotations

from django import forms
from django.contrib.auth import password_validation
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from .auth_services import METHOD_SMS, METHOD_TOTP
from .models import phone_validator
from .phones import normalise_phone
from .services import phone_in_use_by_another, phone_in_use_error

_code_widget = forms.TextInput(
    attrs={
        "autocomplete": "one-time-code",
        "inputmode": "numeric",
        "pattern": "[0-9]{6}",
        "maxlength": "6",
        "class": "form-control form-control-lg text-center font-monospace otp-input mx-auto",
        "autofocus": True,
    }
)


class LoginForm(forms.Form):
    username = forms.CharField(
        label=_("Username"),
        max_length=150,
        widget=forms.TextInput(attrs={"autocomplete": "username", "autofocus": True, "class": "form-control"}),
    )
    password = forms.CharField(
        label=_("Password"),
        strip=False,
        max_length=4096,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password", "class": "form-control"}),
    )


class CodeForm(forms.Form):
    otp_token = forms.CharField(label=_("Code"), max_length=16, widget=_code_widget)

    def clean_otp_token(self) -> str:
        return "".join(self.cleaned_data["otp_token"].split())


class SecondFactorForm(CodeForm):
    """The code and, when the user has both, which device it comes from."""

    method = forms.ChoiceField(
        label=_("Device"),
        choices=[(METHOD_SMS, _("SMS code")), (METHOD_TOTP, _("Authenticator app"))],
        widget=forms.RadioSelect(attrs={"class": "form-check-input"}),
    )

    def __init__(self, *args, methods: list[str], **kwargs):
        super().__init__(*args, **kwargs)
        field = self.fields["method"]
        field.choices = [c for c in field.choices if c[0] in methods]
        if methods:
            field.initial = methods[0]
        if len(methods) <= 1:
            field.widget = forms.HiddenInput()
            field.required = bool(methods)


class PasswordChangeForm(forms.Form):
    current_password = forms.CharField(
        label=_("Current password"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password", "class": "form-control"}),
    )
    new_password1 = forms.CharField(
        label=_("New password"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password", "class": "form-control"}),
        help_text=password_validation.password_validators_help_text_html(),
    )
    new_password2 = forms.CharField(
        label=_("New password again"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password", "class": "form-control"}),
    )

    def __init__(self, *args, user, **kwargs):
        self.user = user
        super().__init__(*args, **kwargs)

    def clean_current_password(self) -> str:
        value = self.cleaned_data["current_password"]
        if not self.user.check_password(value):
            raise ValidationError(_("Your current password is not correct."), code="password_incorrect")
        return value

    def clean(self):
        cleaned = super().clean()
        new1, new2 = cleaned.get("new_password1"), cleaned.get("new_password2")
        if new1 and new2 and new1 != new2:
            self.add_error("new_password2", _("The two new passwords differ."))
        elif new1:
            try:
                password_validation.validate_password(new1, self.user)
            except ValidationError as exc:
                self.add_error("new_password1", exc)
        return cleaned


class PhoneForm(forms.Form):
    phone = forms.CharField(
        label=_("New mobile phone"),
        max_length=20,
        widget=forms.TextInput(attrs={"autocomplete": "tel", "inputmode": "tel", "class": "form-control"}),
    )

    def __init__(self, *args, user, **kwargs):
        self.user = user
        super().__init__(*args, **kwargs)

    def clean_phone(self) -> str:
        phone = normalise_phone(self.cleaned_data["phone"])
        phone_validator(phone)
        if phone == self.user.phone:
            raise ValidationError(_("This is already your phone number."), code="same_phone")
        if phone_in_use_by_another(phone, user=self.user):
            # Before any code is sent to it: one SMS factor per person (security B1).
            raise phone_in_use_error()
        return phone
