"""Home, health and the placeholder for sections still to come."""

from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from django.views.generic import TemplateView

from .mixins import PortalPermissionMixin, public_view


class HomeView(PortalPermissionMixin, TemplateView):
    """The landing page: who you are, your organisation, your previous sign-in."""

    template_name = "core/home.html"
    any_signed_in_user = True


class PlaceholderView(PortalPermissionMixin, TemplateView):
    """A polite page for a section whose features are not built yet."""

    template_name = "core/placeholder.html"
    section_title = ""

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["section_title"] = self.section_title
        return context


@public_view
@never_cache
@require_GET
def health(request):
    """Liveness and database reachability, for load balancers. Reveals nothing else."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return JsonResponse({"status": "ok"})
    except Exception:
        return JsonResponse({"status": "unavailable"}, status=503)
