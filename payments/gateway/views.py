"""The ACP notification receiver (``POST /gateway/acp/notify/``).

Machine to machine: no session, no CSRF token; the signature authenticates the message. The body is decoded as
the network sent it (``decode_request(request.body)``): query-string parameters of the back URL are ignored, as the
protocol requires. A bad signature, a malformed message or an unknown merchant answers 400, writes nothing to the
ledger and leaves one security audit event; anything else answers 200 ``ok`` at once (confirmation by query runs in
the background).
"""

from __future__ import annotations

import logging

from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.views.decorators.csrf import csrf_exempt

from portal.core.mixins import public_view

from .acp.codec import decode_request
from .acp.errors import ACPFormatError, SignatureError
from .config import portal_verifier
from .notifications import NotificationRejected, notification_record, notification_reject_audit

logger = logging.getLogger(__name__)


def _reject(reason: str, params: dict | None) -> HttpResponse:
    notification_reject_audit(reason=reason, params=params)
    logger.warning("notify: rejected (%s) merId=%s", reason, (params or {}).get("merId", "")[:15])
    return HttpResponse("rejected", status=400, content_type="text/plain")


@public_view
@csrf_exempt
def notify(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    try:
        params = decode_request(request.body)
    except (ACPFormatError, RequestDataTooBig):
        return _reject("malformed", None)
    try:
        portal_verifier().verify(params)
    except SignatureError:
        return _reject("bad_signature", params)
    try:
        notification_record(params=params)
    except NotificationRejected as exc:
        return _reject(exc.reason, params)
    return HttpResponse("ok", content_type="text/plain")
