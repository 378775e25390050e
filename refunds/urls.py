from django.urls import path
from django.utils.translation import gettext_lazy as _

from portal.accounts.roles import Perm
from portal.core.views import PlaceholderView

app_name = "refunds"

urlpatterns = [
    path("", PlaceholderView.as_view(permission_required=Perm.REFUNDS_VIEW, section_title=_("Refunds")), name="index"),
]
