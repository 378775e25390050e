"""User management pages: list, detail, create, edit, disable / enable, unlock, reset password.

Listing and reading need ``users.view``; every action needs ``users.manage`` and a second-factor
code confirmed within the last 5 minutes (step-up), for the form (GET) and its submission (POST).
Users are fetched through ``users_manageable_by``: anyone else is a 404.
"""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils.cache import add_never_cache_headers
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.generic import DetailView, FormView, TemplateView
from django_filters.views import FilterView
from django_tables2 import SingleTableMixin

from portal.core.mixins import PortalPermissionMixin

from .filtersets import UserFilterSet, user_list_queryset
from .forms_users import PasswordResetForm, UserCreateForm, UserEditForm
from .models import Organisation, User
from .roles import Perm
from .services import (
    user_create_managed,
    user_disable,
    user_enable,
    user_is_locked,
    user_reset_password,
    user_unlock,
    user_update,
    users_manageable_by,
    with_lock_state,
)
from .stepup import StepUpRequiredMixin
from .tables import UserTable, user_status


def _add_errors(form, error: ValidationError) -> None:
    """Put a service's ValidationError on the form's fields (or on the form as a whole)."""
    if hasattr(error, "error_dict"):
        for field, errors in error.error_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, error)


class UserListView(PortalPermissionMixin, SingleTableMixin, FilterView):
    """The users the administrator manages, searchable and filterable (the API's FilterSet)."""

    permission_required = Perm.USERS_VIEW
    template_name = "accounts/users/list.html"
    table_class = UserTable
    filterset_class = UserFilterSet
    table_pagination = {"per_page": 25}

    def get_queryset(self):
        return user_list_queryset(self.request.user)


class UserDetailView(PortalPermissionMixin, DetailView):
    permission_required = Perm.USERS_VIEW
    template_name = "accounts/users/detail.html"
    context_object_name = "target"

    def get_queryset(self):
        return user_list_queryset(self.request.user)

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        target = self.object
        context["status_code"], context["status_label"] = user_status(target)
        context["is_self"] = target.pk == self.request.user.pk
        context["can_manage"] = self.request.user.has_portal_perm(Perm.USERS_MANAGE)
        return context


class ManageUserMixin(PortalPermissionMixin, StepUpRequiredMixin):
    """``users.manage`` + fresh step-up, and the target user among those the actor manages."""

    permission_required = Perm.USERS_MANAGE

    def get_target(self) -> User:
        if not hasattr(self, "_target"):
            qs = with_lock_state(users_manageable_by(self.request.user)).select_related("organisation")
            self._target = get_object_or_404(qs, pk=self.kwargs["pk"])
        return self._target

    def detail_url(self) -> str:
        return reverse("accounts:user_detail", args=[self.get_target().pk])

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["target"] = self.get_target()
        return context


def _password_result(request, *, target: User, password: str | None, created: bool):
    """The one page that shows a temporary password; never cached, never stored."""
    from django.shortcuts import render

    response = render(
        request,
        "accounts/users/password_result.html",
        {"target": target, "password": password, "created": created},
    )
    add_never_cache_headers(response)  # includes no-store
    return response


class UserCreateView(PortalPermissionMixin, StepUpRequiredMixin, FormView):
    permission_required = Perm.USERS_MANAGE
    template_name = "accounts/users/form.html"
    form_class = UserCreateForm

    def get_form_kwargs(self):
        return {**super().get_form_kwargs(), "actor": self.request.user}

    def get_context_data(self, **kwargs):
        return {**super().get_context_data(**kwargs), "title": _("Add user")}

    def form_valid(self, form):
        data = form.cleaned_data
        try:
            user, password = user_create_managed(
                actor=self.request.user,
                organisation=data["organisation"],
                username=data["username"],
                first_name=data["first_name"],
                last_name=data["last_name"],
                email=data["email"],
                phone=data["phone"],
                roles=data["roles"],
                delivery=data["delivery"],
            )
        except Organisation.DoesNotExist as exc:
            raise Http404 from exc
        except ValidationError as exc:
            _add_errors(form, exc)
            return self.form_invalid(form)
        return _password_result(self.request, target=user, password=password, created=True)


class UserEditView(ManageUserMixin, FormView):
    template_name = "accounts/users/form.html"
    form_class = UserEditForm

    def get_form_kwargs(self):
        return {**super().get_form_kwargs(), "actor": self.request.user, "target": self.get_target()}

    def get_initial(self):
        target = self.get_target()
        return {
            "first_name": target.first_name,
            "last_name": target.last_name,
            "phone": target.phone,
            "roles": sorted(target.role_codes),
        }

    def get_context_data(self, **kwargs):
        return {**super().get_context_data(**kwargs), "title": _("Edit user")}

    def form_valid(self, form):
        data = form.cleaned_data
        try:
            user_update(
                actor=self.request.user,
                user=self.get_target(),
                first_name=data["first_name"],
                last_name=data["last_name"],
                phone=data["phone"],
                roles=data["roles"],
            )
        except User.DoesNotExist as exc:
            raise Http404 from exc
        except ValidationError as exc:
            _add_errors(form, exc)
            return self.form_invalid(form)
        messages.success(self.request, _("The user was updated."))
        return HttpResponseRedirect(self.detail_url())


class UserActionView(ManageUserMixin, TemplateView):
    """A confirmation page (GET) and the action itself (POST)."""

    template_name = "accounts/users/confirm.html"
    title = ""
    question = ""
    button = ""
    button_class = "btn-primary"
    success_message = ""

    def act(self, actor: User, target: User) -> None:
        raise NotImplementedError

    def get(self, request, *args, **kwargs):
        self.get_target()
        return super().get(request, *args, **kwargs)

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context.update(
            title=self.title,
            question=self.question % {"username": self.get_target().username},
            button=self.button,
            button_class=self.button_class,
        )
        return context

    def post(self, request, *args, **kwargs):
        target = self.get_target()
        try:
            self.act(request.user, target)
        except User.DoesNotExist as exc:
            raise Http404 from exc
        except ValidationError as exc:
            for message in exc.messages:
                messages.error(request, message)
            return HttpResponseRedirect(self.detail_url())
        messages.success(request, self.success_message % {"username": target.username})
        return HttpResponseRedirect(self.detail_url())


class UserDisableView(UserActionView):
    button_class = "btn-danger"

    title = gettext_lazy("Disable user")
    question = gettext_lazy("Disable %(username)s? They are signed out at once and cannot sign in until enabled.")
    button = gettext_lazy("Disable")
    success_message = gettext_lazy("%(username)s was disabled and signed out.")

    def act(self, actor, target):
        user_disable(actor=actor, user=target)


class UserEnableView(UserActionView):
    title = gettext_lazy("Enable user")
    question = gettext_lazy("Enable %(username)s? They can sign in again.")
    button = gettext_lazy("Enable")
    success_message = gettext_lazy("%(username)s was enabled.")

    def act(self, actor, target):
        user_enable(actor=actor, user=target)


class UserUnlockView(UserActionView):
    title = gettext_lazy("Unlock user")
    question = gettext_lazy("Unlock %(username)s? Their failed sign-in attempts are cleared.")
    button = gettext_lazy("Unlock")
    success_message = gettext_lazy("%(username)s was unlocked.")

    def get_context_data(self, **kwargs):
        return {**super().get_context_data(**kwargs), "locked": user_is_locked(self.get_target())}

    def act(self, actor, target):
        user_unlock(actor=actor, user=target)


class UserResetPasswordView(ManageUserMixin, FormView):
    template_name = "accounts/users/form.html"
    form_class = PasswordResetForm

    def get(self, request, *args, **kwargs):
        self.get_target()
        return super().get(request, *args, **kwargs)

    def post(self, request, *args, **kwargs):
        self.get_target()
        return super().post(request, *args, **kwargs)

    def get_context_data(self, **kwargs):
        return {
            **super().get_context_data(**kwargs),
            "title": _("Reset password"),
            "intro": _(
                "The user gets a new temporary password and must change it when signing in. "
                "Their current sessions end at once."
            ),
        }

    def form_valid(self, form):
        target = self.get_target()
        try:
            password = user_reset_password(actor=self.request.user, user=target, delivery=form.cleaned_data["delivery"])
        except User.DoesNotExist as exc:
            raise Http404 from exc
        except ValidationError as exc:
            _add_errors(form, exc)
            return self.form_invalid(form)
        return _password_result(self.request, target=target, password=password, created=False)
