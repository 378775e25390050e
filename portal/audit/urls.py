from django.urls import path
from django.utils.translation import gettext_lazy as _

from portal.accounts.roles import Perm
from portal.core.views import PlaceholderView

app_name = "audit"

urlpatterns = [
    path("", PlaceholderView.as_view(permission_required=Perm.AUDIT_VIEW, section_title=_("Audit log")),
         name="event_list"),
]
