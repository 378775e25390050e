from django.urls import include, path

from . import views

app_name = "accounts"

urlpatterns = [
    path("login/", views.LoginView.as_view(), name="login"),
    path("verify/", views.VerifyView.as_view(), name="verify"),
    path("verify/resend/", views.ResendView.as_view(), name="resend"),
    path("logout/", views.LogoutView.as_view(), name="logout"),
    path("password/change/", views.PasswordChangeView.as_view(), name="password_change"),
    path("security/", views.SecurityView.as_view(), name="security"),
    path("security/phone/", views.PhoneChangeView.as_view(), name="phone_change"),
    path("security/authenticator/", views.TotpEnrolView.as_view(), name="totp_enrol"),
    path("step-up/", views.StepUpView.as_view(), name="step_up"),
    path("users/", include("portal.accounts.urls_users")),
]
