from django.urls import path
from django.utils.translation import gettext_lazy as _

from portal.accounts.roles import Perm
from portal.core.views import PlaceholderView

app_name = "accounts"

urlpatterns = [
    path("logout/", PlaceholderView.as_view(any_signed_in_user=True, section_title="logout"), name="logout"),
    path("login/", PlaceholderView.as_view(any_signed_in_user=True, section_title="login"), name="login"),
    path("verify/", PlaceholderView.as_view(any_signed_in_user=True, section_title="verify"), name="verify"),
    path("password/change/", PlaceholderView.as_view(any_signed_in_user=True, section_title="pw"),
         name="password_change"),
    path("security/", PlaceholderView.as_view(any_signed_in_user=True, section_title=_("Security")), name="security"),
    path("users/", PlaceholderView.as_view(permission_required=Perm.USERS_VIEW, section_title=_("Users")),
         name="user_list"),
]
