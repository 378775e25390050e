"""The REST API: /api/v1/ (routers of the apps), /api/schema/ and /api/docs/."""

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from .api import IsFullyAuthenticated


class SchemaView(SpectacularAPIView):
    permission_classes = [IsFullyAuthenticated]
    any_signed_in_user = True


class DocsView(SpectacularSwaggerSplitView):
    permission_classes = [IsFullyAuthenticated]
    any_signed_in_user = True
    url_name = "api-schema"


api_v1 = [
    path("", include("portal.accounts.api.urls")),
    path("", include("portal.audit.api.urls")),
    path("", include("portal.approvals.api.urls")),
    path("", include("portal.batches.api.urls")),
    path("", include("payments.api.urls")),
    path("", include("reconciliation.upstream.api.urls")),
    path("", include("reconciliation.api.urls")),
    path("", include("refunds.api.urls")),
]

api_urlpatterns = [
    path("v1/", include(api_v1)),
    path("schema/", SchemaView.as_view(), name="api-schema"),
    path("docs/", DocsView.as_view(), name="api-docs"),
]
