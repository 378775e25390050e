"""Sign-in (password, then a second factor), sign-out, language switch, password change,
the security page, phone change, authenticator-app enrolment and step-up.

Every answer to a failed password step is the same page whatever the reason (unknown user,
wrong password, inactive or locked account), so that it does not tell whether an account exists.
"""

from __future__ import annotations

import base64
import time
from urllib.parse import urlencode

import django_otp
import segno
from axes.utils import reset as axes_reset
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import authenticate, get_user_model, login, logout, update_session_auth_hash
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import check_for_language, gettext_lazy
from django.utils.translation import gettext as _
from django.views import View
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_POST
from django.views.generic import FormView, TemplateView
from django.views.i18n import set_language as django_set_language
from django_otp.plugins.otp_totp.models import TOTPDevice

from portal.core.middleware import client_ip
from portal.core.mixins import PortalPermissionMixin, public_view

from . import auth_services
from .auth_forms import CodeForm, LoginForm, PasswordChangeForm, PhoneForm, SecondFactorForm
from .auth_services import METHOD_SMS, METHOD_TOTP, PURPOSE_LOGIN, PURPOSE_PHONE_CHANGE, PURPOSE_STEP_UP
from .middleware import SESSION_AUTH_AT, SESSION_LAST_ACTIVITY
from .phones import mask_phone
from .second_factor import check_step_up_code, count_code_failure, session_challenge, username_is_locked
from .services import phone_in_use_error, user_set_password
from .sms import SmsDailyCapExceeded, SmsIpCapExceeded
from .stepup import SESSION_OTP_VERIFIED_AT, StepUpRequiredMixin, mark_second_factor_confirmed

GENERIC_LOGIN_ERROR = gettext_lazy("Invalid username or password, or the account is locked.")
PHONE_TAKEN_AT_SIGN_IN = gettext_lazy(
    "Your mobile phone number is already confirmed for another active user, so this code cannot confirm it "
    "for you. Ask your administrator to correct your phone number."
)
SESSION_NEXT = "portal_login_next"
SESSION_PENDING_PHONE = "portal_pending_phone"
SESSION_TOTP_ENROL = "portal_totp_enrol_device"


def _safe_next(request, candidate: str | None) -> str | None:
    if candidate and url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return None


def _login_page(request, *, failed: bool = False, form: LoginForm | None = None):
    """The sign-in page. After a failure the form comes back empty with one generic message,
    so unknown user, wrong password and locked account give the same page."""
    context = {
        "form": form if form is not None else LoginForm(),
        "login_error": GENERIC_LOGIN_ERROR if failed else "",
        "next": _safe_next(request, request.POST.get("next") or request.GET.get("next")) or "",
    }
    return render(request, "accounts/login.html", context)


def _send_failure_message(request, exc: Exception) -> None:
    if isinstance(exc, auth_services.CodeCooldown):
        messages.warning(
            request,
            _("A code was sent less than a minute ago. You can ask for a new one in %(seconds)d seconds.")
            % {"seconds": exc.wait_seconds},
        )
    elif isinstance(exc, SmsIpCapExceeded):
        messages.error(
            request,
            _("Too many text messages were requested from your network today. Use another method or try tomorrow."),
        )
    else:
        messages.error(
            request, _("Too many text messages were sent to this phone today. Use another method or try tomorrow.")
        )


def _locked_out(request):
    """The username just got locked: end the half-open session and show the generic sign-in error."""
    logout(request)
    messages.error(request, GENERIC_LOGIN_ERROR)
    return redirect(settings.LOGIN_URL)


@public_view
def set_language(request):
    """Django's language switch; a signed-in user's choice is also remembered on the account."""
    response = django_set_language(request)
    language = request.POST.get("language", "") if request.method == "POST" else ""
    if request.user.is_authenticated and language in dict(settings.LANGUAGES) and check_for_language(language):
        auth_services.user_set_language(user=request.user, language=language)
    return response


def lockout_response(request, original_response=None, credentials=None, *args, **kwargs):
    """django-axes' answer for a locked username: the very same page as any failed sign-in, after as long.
    Axes refuses before any backend runs, so the password is hashed here as the model backend hashes it
    for an unknown user: the answer's timing does not tell a locked account either (security A11)."""
    get_user_model()().set_password(request.POST.get("password", ""))
    return _login_page(request, failed=True)


@method_decorator([sensitive_post_parameters("password"), never_cache], name="dispatch")
class LoginView(View):
    """Step one: username and password. Success rotates the session key and sends the SMS code."""

    portal_public = True

    def get(self, request):
        if request.user.is_authenticated and request.user.is_verified():
            return redirect(_safe_next(request, request.GET.get("next")) or settings.LOGIN_REDIRECT_URL)
        return _login_page(request)

    def post(self, request):
        form = LoginForm(request.POST)
        if not form.is_valid():
            return _login_page(request, form=form)
        username = form.cleaned_data["username"]
        user = authenticate(request, username=username, password=form.cleaned_data["password"])
        if user is None:
            auth_services.auth_login_failure(username=username)
            return _login_page(request, failed=True)
        previous_last_login = user.last_login
        next_url = _safe_next(request, request.POST.get("next"))
        login(request, user)  # rotates the session key
        auth_services.auth_password_step_success(user=user, previous_last_login=previous_last_login)
        now = time.time()
        request.session[SESSION_AUTH_AT] = now
        request.session[SESSION_LAST_ACTIVITY] = now
        request.session.pop(SESSION_OTP_VERIFIED_AT, None)
        request.session.pop(SESSION_NEXT, None)
        if next_url:
            request.session[SESSION_NEXT] = next_url
        challenge = session_challenge(request, fresh=True)
        if auth_services.login_sms_device(user) is not None:
            try:
                auth_services.sms_code_send(user=user, purpose=PURPOSE_LOGIN, phone=user.phone, challenge=challenge)
            except (auth_services.CodeCooldown, SmsDailyCapExceeded) as exc:
                _send_failure_message(request, exc)
        return redirect("accounts:verify")


def _methods_for(user, *, sign_in: bool) -> list[str]:
    """The second factors the user may use: the authenticator app, and SMS to a verified phone, or at
    sign-in (``sign_in``) to any phone of the user: the first sign-in code confirms an administrator's
    phone (security check A8). A phone not confirmed yet is no factor for step-up."""
    methods = []
    if auth_services.confirmed_totp_device(user) is not None:
        methods.append(METHOD_TOTP)
    sms = auth_services.login_sms_device(user) if sign_in else auth_services.sms_factor_phone(user)
    if sms:
        methods.append(METHOD_SMS)
    return methods


@method_decorator([sensitive_post_parameters("otp_token"), never_cache], name="dispatch")
class VerifyView(View):
    """Step two: a code from the user's SMS device or authenticator app."""

    portal_password_step = True
    template_name = "accounts/verify.html"

    def dispatch(self, request, *args, **kwargs):
        if not request.user.is_authenticated:
            return redirect(settings.LOGIN_URL)
        if request.user.is_verified():
            return redirect(settings.LOGIN_REDIRECT_URL)
        if username_is_locked(request, request.user.get_username()):
            return _locked_out(request)
        return super().dispatch(request, *args, **kwargs)

    def render_page(self, form, status=200):
        user = self.request.user
        methods = _methods_for(user, sign_in=True)
        return render(
            self.request,
            self.template_name,
            {
                "form": form,
                "methods": methods,
                "masked_phone": mask_phone(user.phone) if METHOD_SMS in methods else "",
            },
            status=status,
        )

    def get(self, request):
        return self.render_page(SecondFactorForm(methods=_methods_for(request.user, sign_in=True)))

    def post(self, request):
        user = request.user
        methods = _methods_for(user, sign_in=True)
        form = SecondFactorForm(request.POST, methods=methods)
        if not form.is_valid() or not methods:
            return self.render_page(form)
        method = form.cleaned_data.get("method") or methods[0]
        check = auth_services.auth_otp_verify(
            user=user,
            method=method,
            token=form.cleaned_data["otp_token"],
            challenge=session_challenge(request),
            ip=client_ip(request),
        )
        if check.ok:
            django_otp.login(request, check.device)
            request.session.cycle_key()  # django_otp.login() does not rotate the key
            mark_second_factor_confirmed(request)
            axes_reset(username=user.get_username())
            next_url = _safe_next(request, request.session.pop(SESSION_NEXT, None))
            if user.must_change_password:
                return redirect("accounts:password_change")
            return redirect(next_url or settings.LOGIN_REDIRECT_URL)
        if check.phone_in_use:
            # The code was right: not a failure to count, but no sign-in on another person's phone.
            form.add_error("otp_token", PHONE_TAKEN_AT_SIGN_IN)
            return self.render_page(form)
        if check.throttled:
            form.add_error(
                "otp_token",
                _("Too many wrong codes. Wait %(seconds)d seconds and try again.") % {"seconds": check.wait_seconds},
            )
            return self.render_page(form)
        if count_code_failure(request, user):
            return _locked_out(request)
        form.add_error("otp_token", _("This code is not valid or has expired."))
        return self.render_page(form)


@method_decorator(never_cache, name="dispatch")
class ResendView(View):
    """A new sign-in code by SMS (at most one a minute, and a daily cap per phone)."""

    portal_password_step = True
    http_method_names = ["post"]

    def post(self, request):
        user = request.user
        if not user.is_authenticated:
            return redirect(settings.LOGIN_URL)
        if user.is_verified():
            return redirect(settings.LOGIN_REDIRECT_URL)
        if username_is_locked(request, user.get_username()):
            return _locked_out(request)
        if auth_services.login_sms_device(user) is None:
            messages.error(request, _("Your account has no verified mobile phone."))
            return redirect("accounts:verify")
        try:
            auth_services.sms_code_send(
                user=user, purpose=PURPOSE_LOGIN, phone=user.phone, challenge=session_challenge(request)
            )
        except (auth_services.CodeCooldown, SmsDailyCapExceeded) as exc:
            _send_failure_message(request, exc)
        else:
            messages.success(request, _("A new code was sent to %(phone)s.") % {"phone": mask_phone(user.phone)})
        return redirect("accounts:verify")


@method_decorator(require_POST, name="dispatch")
class LogoutView(View):
    """Sign out (POST only). The session is deleted on the server, so the old cookie is worthless."""

    portal_public = True

    def post(self, request):
        if request.user.is_authenticated:
            auth_services.auth_logout(user=request.user)
        logout(request)
        messages.info(request, _("You have signed out."))
        return redirect(settings.LOGIN_URL)


@method_decorator([sensitive_post_parameters(), never_cache], name="dispatch")
class PasswordChangeView(PortalPermissionMixin, FormView):
    """Change one's password, giving the current one. Reachable while a change is forced."""

    portal_password_change = True
    any_signed_in_user = True
    template_name = "accounts/password_change.html"
    form_class = PasswordChangeForm

    def get_form_kwargs(self):
        kwargs = super().get_form_kwargs()
        kwargs["user"] = self.request.user
        return kwargs

    def form_valid(self, form):
        user = self.request.user
        user_set_password(actor=user, user=user, raw_password=form.cleaned_data["new_password1"], must_change=False)
        # The epoch moved on (other sessions end); this one stays signed in.
        update_session_auth_hash(self.request, user)
        messages.success(self.request, _("Your password has been changed."))
        return redirect(settings.LOGIN_REDIRECT_URL)


class SecurityView(PortalPermissionMixin, TemplateView):
    """The user's own sign-in settings: phone, second-factor devices, password."""

    any_signed_in_user = True
    template_name = "accounts/security.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        user = self.request.user
        context["phone_verified"] = bool(user.phone and user.phone_verified)
        context["totp_device"] = auth_services.confirmed_totp_device(user)
        context["masked_phone"] = mask_phone(user.phone) if user.phone else ""
        return context


@method_decorator([sensitive_post_parameters("otp_token"), never_cache], name="dispatch")
class PhoneChangeView(PortalPermissionMixin, StepUpRequiredMixin, View):
    """Change one's phone: a code goes to the new phone and must come back before it is used."""

    any_signed_in_user = True
    template_name = "accounts/phone_change.html"

    def render_page(self, *, phone_form=None, code_form=None):
        pending = self.request.session.get(SESSION_PENDING_PHONE)
        return render(
            self.request,
            self.template_name,
            {
                "pending_phone": mask_phone(pending) if pending else "",
                "phone_form": phone_form or PhoneForm(user=self.request.user),
                "code_form": code_form or CodeForm(),
            },
        )

    def get(self, request):
        return self.render_page()

    def post(self, request):
        action = request.POST.get("action")
        if action == "cancel":
            request.session.pop(SESSION_PENDING_PHONE, None)
            return redirect("accounts:phone_change")
        if action == "confirm":
            return self.confirm(request)
        phone_form = PhoneForm(request.POST, user=request.user)
        if not phone_form.is_valid():
            return self.render_page(phone_form=phone_form)
        phone = phone_form.cleaned_data["phone"]
        try:
            auth_services.sms_code_send(
                user=request.user, purpose=PURPOSE_PHONE_CHANGE, phone=phone, challenge=session_challenge(request)
            )
        except (auth_services.CodeCooldown, SmsDailyCapExceeded) as exc:
            _send_failure_message(request, exc)
            return self.render_page(phone_form=phone_form)
        request.session[SESSION_PENDING_PHONE] = phone
        messages.success(request, _("A code was sent to %(phone)s.") % {"phone": mask_phone(phone)})
        return redirect("accounts:phone_change")

    def confirm(self, request):
        phone = request.session.get(SESSION_PENDING_PHONE)
        if not phone:
            return redirect("accounts:phone_change")
        code_form = CodeForm(request.POST)
        if not code_form.is_valid():
            return self.render_page(code_form=code_form)
        check = auth_services.user_phone_change_confirm(
            actor=request.user,
            phone=phone,
            token=code_form.cleaned_data["otp_token"],
            challenge=session_challenge(request),
        )
        if check.ok:
            request.session.pop(SESSION_PENDING_PHONE, None)
            messages.success(request, _("Your mobile phone has been changed."))
            return redirect("accounts:security")
        if check.phone_in_use:
            request.session.pop(SESSION_PENDING_PHONE, None)
            messages.error(request, phone_in_use_error().messages[0])
            return redirect("accounts:phone_change")
        if not check.throttled and count_code_failure(request, request.user):
            return _locked_out(request)
        code_form.add_error("otp_token", _("This code is not valid or has expired."))
        return self.render_page(code_form=code_form)


@method_decorator([sensitive_post_parameters("otp_token"), never_cache], name="dispatch")
class TotpEnrolView(PortalPermissionMixin, StepUpRequiredMixin, View):
    """Enrol an authenticator app: scan the QR code (or type the key), then confirm with a code."""

    any_signed_in_user = True
    template_name = "accounts/totp_enrol.html"

    def pending_device(self) -> TOTPDevice:
        device_id = self.request.session.get(SESSION_TOTP_ENROL)
        device = TOTPDevice.objects.filter(pk=device_id, user=self.request.user, confirmed=False).first()
        if device is None:
            device = auth_services.totp_device_start(user=self.request.user)
            self.request.session[SESSION_TOTP_ENROL] = device.pk
        return device

    def render_page(self, device: TOTPDevice, form: CodeForm):
        qr = segno.make(device.config_url, error="m")
        return render(
            self.request,
            self.template_name,
            {
                "form": form,
                "qr_data_uri": qr.svg_data_uri(scale=5, border=2),
                "secret": base64.b32encode(device.bin_key).decode("ascii").rstrip("="),
                "replaces": auth_services.confirmed_totp_device(self.request.user) is not None,
            },
        )

    def get(self, request):
        return self.render_page(self.pending_device(), CodeForm())

    def post(self, request):
        device = self.pending_device()
        form = CodeForm(request.POST)
        if not form.is_valid():
            return self.render_page(device, form)
        check = auth_services.totp_device_confirm(
            actor=request.user, device_id=device.pk, token=form.cleaned_data["otp_token"]
        )
        if check.ok:
            request.session.pop(SESSION_TOTP_ENROL, None)
            messages.success(request, _("Your authenticator app is set up."))
            return redirect("accounts:security")
        if not check.throttled and count_code_failure(request, request.user):
            return _locked_out(request)
        form.add_error("otp_token", _("This code is not valid. Check the time on your phone and try again."))
        return self.render_page(device, form)


@method_decorator([sensitive_post_parameters("otp_token"), never_cache], name="dispatch")
class StepUpView(PortalPermissionMixin, View):
    """Confirm a fresh second-factor code before a sensitive action, then go back to it (``?next=``)."""

    any_signed_in_user = True
    template_name = "accounts/step_up.html"

    def next_url(self) -> str:
        request = self.request
        return _safe_next(request, request.POST.get("next") or request.GET.get("next")) or reverse("accounts:security")

    def send_code(self, *, quiet: bool) -> None:
        user = self.request.user
        try:
            auth_services.sms_code_send(
                user=user, purpose=PURPOSE_STEP_UP, phone=user.phone, challenge=session_challenge(self.request)
            )
        except auth_services.CodeCooldown as exc:
            if not quiet:
                _send_failure_message(self.request, exc)
        except SmsDailyCapExceeded as exc:
            _send_failure_message(self.request, exc)
        else:
            messages.info(self.request, _("A code was sent to %(phone)s.") % {"phone": mask_phone(user.phone)})

    def render_page(self, form):
        user = self.request.user
        methods = _methods_for(user, sign_in=False)
        return render(
            self.request,
            self.template_name,
            {
                "form": form,
                "methods": methods,
                "masked_phone": mask_phone(user.phone) if METHOD_SMS in methods else "",
                "next": self.next_url(),
            },
        )

    def get(self, request):
        methods = _methods_for(request.user, sign_in=False)
        if methods == [METHOD_SMS]:
            self.send_code(quiet=True)
        return self.render_page(SecondFactorForm(methods=methods))

    def post(self, request):
        methods = _methods_for(request.user, sign_in=False)
        if request.POST.get("action") == "send":
            if METHOD_SMS in methods:
                self.send_code(quiet=False)
            return redirect(f"{reverse('accounts:step_up')}?{_next_query(self.next_url())}")
        form = SecondFactorForm(request.POST, methods=methods)
        if not form.is_valid() or not methods:
            return self.render_page(form)
        check = check_step_up_code(
            request, request.user, form.cleaned_data["otp_token"], form.cleaned_data.get("method") or methods[0]
        )
        if check.ok:
            return redirect(self.next_url())
        if not request.user.is_authenticated:  # locked out and signed out
            messages.error(request, GENERIC_LOGIN_ERROR)
            return redirect(settings.LOGIN_URL)
        if check.throttled:
            form.add_error(
                "otp_token",
                _("Too many wrong codes. Wait %(seconds)d seconds and try again.") % {"seconds": check.wait_seconds},
            )
        else:
            form.add_error("otp_token", _("This code is not valid or has expired."))
        return self.render_page(form)


def _next_query(next_url: str) -> str:
    return urlencode({"next": next_url})
