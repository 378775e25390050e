"""Request origin for audit events and a request id on every response."""

import re
import uuid

from django.conf import settings

from .context import RequestOrigin, reset_origin, set_origin

_REQUEST_ID = re.compile(r"^[A-Za-z0-9\-]{8,64}$")


def client_ip(request) -> str | None:
    """The client's IP: REMOTE_ADDR, or the n-th address from the right of X-Forwarded-For
    when PROXY_COUNT trusted proxies sit in front (the same rule django-axes uses)."""
    proxies = getattr(settings, "AXES_IPWARE_PROXY_COUNT", 0)
    if proxies:
        forwarded = [p.strip() for p in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if p.strip()]
        if len(forwarded) >= proxies:
            return forwarded[-proxies]
    return request.META.get("REMOTE_ADDR") or None


class RequestContextMiddleware:
    """Gives each request an id (kept from a well-formed X-Request-ID) and publishes the origin."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        incoming = request.headers.get("X-Request-ID", "")
        request.id = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex
        token = set_origin(
            RequestOrigin(
                ip=client_ip(request),
                user_agent=request.headers.get("User-Agent", "")[:255],
                request_id=request.id,
            )
        )
        try:
            response = self.get_response(request)
        finally:
            reset_origin(token)
        response["X-Request-ID"] = request.id
        return response
