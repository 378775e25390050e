"""URL map. Domain apps are included by module path, so the platform imports none of them."""

from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from django_otp.admin import OTPAdminSite

from portal.accounts.views import set_language
from portal.core.api_urls import api_urlpatterns

# The admin is for platform administrators only, and only after both factors.
admin.site.__class__ = OTPAdminSite
admin.site.site_header = "Merchant portal administration"

urlpatterns = [
    path("", include("portal.core.urls")),
    path("accounts/", include("portal.accounts.urls")),
    path("audit/", include("portal.audit.urls")),
    path("approvals/", include("portal.approvals.urls")),
    path("batches/", include("portal.batches.urls")),
    path("transactions/", include("payments.urls")),
    path("gateway/acp/", include("payments.gateway.urls")),
    path("refunds/", include("refunds.urls")),
    path("settlement/", include("reconciliation.urls")),
    path("help/", include("portal.core.help_urls")),
    path("i18n/setlang/", set_language, name="set_language"),
    path("api/", include(api_urlpatterns)),
    path("admin/", admin.site.urls),
]

if settings.SANDBOX_ENABLED:
    urlpatterns += [path("sandbox/acp/", include("payments.sandbox.urls"))]
    urlpatterns += [path("help/sandbox/", include("payments.help_urls"))]

if settings.DEBUG:
    urlpatterns += [path("dev/", include("portal.accounts.dev_urls"))]
