"""Forms of user management. They only collect input; the rules live in the services."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from .models import Organisation, User, phone_validator
from .phones import normalise_phone
from .roles import Role
from .services import PasswordDelivery, grantable_roles, organisations_manageable_by

DELIVERY_CHOICES = [
    (PasswordDelivery.SHOW, _("Show the temporary password once on the next page")),
    (PasswordDelivery.SMS, _("Send the temporary password by SMS to the user's mobile phone")),
]


class RoleField(forms.MultipleChoiceField):
    """Shows the roles the administrator may grant, but accepts any known role so that the
    service can refuse a forbidden one with a message that names it."""

    def valid_value(self, value) -> bool:
        return value in Role.values


def style_fields(form) -> None:
    """Bootstrap classes on the form's text inputs and selects (checkboxes and radios are laid out
    by the template)."""
    for field in form.fields.values():
        widget = field.widget
        if isinstance(widget, forms.CheckboxSelectMultiple | forms.RadioSelect | forms.HiddenInput):
            continue
        css = "form-select" if isinstance(widget, forms.Select) else "form-control"
        widget.attrs["class"] = f"{widget.attrs.get('class', '')} {css}".strip()


def _role_choices(codes) -> list[tuple[str, str]]:
    return [(value, label) for value, label in Role.choices if value in codes]


# An administrator's phone is unverified until the user's first sign-in code confirms it (security check A8).
PHONE_HELP = _(
    "A new number is not confirmed yet: the user's sign-in codes go to it and the first one confirms it. "
    "Until then it cannot confirm approvals."
)


class PhoneField(forms.CharField):
    """A phone number in its canonical form (``phones.normalise_phone``); the services normalise again."""

    def __init__(self, **kwargs):
        kwargs.setdefault("max_length", 20)
        kwargs.setdefault("required", False)
        kwargs.setdefault("label", _("Mobile phone"))
        super().__init__(**kwargs)

    def clean(self, value):
        value = normalise_phone(super().clean(value) or "")
        if value:
            phone_validator(value)
        return value


class UserCreateForm(forms.Form):
    """A new user: who, where, which roles, and how the temporary password reaches them."""

    organisation = forms.ModelChoiceField(queryset=Organisation.objects.none(), label=_("Organisation"))
    username = forms.CharField(label=_("Username"), max_length=150)
    first_name = forms.CharField(label=_("First name"), max_length=150, required=False)
    last_name = forms.CharField(label=_("Last name"), max_length=150, required=False)
    email = forms.EmailField(label=_("Email"), required=False)
    phone = PhoneField(help_text=PHONE_HELP)
    roles = RoleField(label=_("Roles"), widget=forms.CheckboxSelectMultiple)
    delivery = forms.ChoiceField(
        label=_("Temporary password"), choices=DELIVERY_CHOICES, initial=PasswordDelivery.SHOW, widget=forms.RadioSelect
    )

    def __init__(self, *args, actor: User, **kwargs):
        super().__init__(*args, **kwargs)
        organisations = organisations_manageable_by(actor)
        self.fields["organisation"].queryset = organisations
        if actor.organisation_id and organisations.filter(pk=actor.organisation_id).exists():
            self.fields["organisation"].initial = actor.organisation_id
        if organisations.exclude(pk=actor.organisation_id).exists():
            # A platform administrator: every role; the service checks it against the chosen organisation.
            codes = set(Role.values)
        else:
            self.fields["organisation"].widget = forms.HiddenInput()
            codes = grantable_roles(actor, actor.organisation)
        self.fields["roles"].choices = _role_choices(codes)
        style_fields(self)


class UserEditForm(forms.Form):
    """Name, phone and roles of an existing user."""

    first_name = forms.CharField(label=_("First name"), max_length=150, required=False)
    last_name = forms.CharField(label=_("Last name"), max_length=150, required=False)
    phone = PhoneField(help_text=PHONE_HELP)
    roles = RoleField(label=_("Roles"), widget=forms.CheckboxSelectMultiple)

    def __init__(self, *args, actor: User, target: User, **kwargs):
        super().__init__(*args, **kwargs)
        current = set(target.role_codes)
        self.fields["roles"].choices = _role_choices(grantable_roles(actor, target.organisation) | current)
        if actor.pk == target.pk:
            self.fields["roles"].disabled = True
            self.fields["roles"].help_text = _("You cannot change your own roles.")
        style_fields(self)


class PasswordResetForm(forms.Form):
    """How the new temporary password reaches the user."""

    delivery = forms.ChoiceField(
        label=_("Temporary password"), choices=DELIVERY_CHOICES, initial=PasswordDelivery.SHOW, widget=forms.RadioSelect
    )
