"""The sandbox acquirer's ACP endpoints (machine to machine: authenticated by signature, not by session)."""

from __future__ import annotations

import logging

from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.views.decorators.csrf import csrf_exempt

from payments.gateway.acp.codec import decode_request, encode_response
from payments.gateway.acp.errors import ACPFormatError, SignatureError
from portal.core.mixins import public_view

from . import services

logger = logging.getLogger(__name__)


def _endpoint(handler):
    @csrf_exempt
    def view(request: HttpRequest) -> HttpResponse:
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        try:
            params = decode_request(request.body)
        except ACPFormatError:
            return _reply(services.answer({}, "10"))
        try:
            services.sandbox_verifier().verify(params)
        except SignatureError as exc:
            logger.info("sandbox: refused a request of %s: %s", params.get("merId", "")[:15], type(exc).__name__)
            return _reply(services.answer(params, "11"))
        return _reply(handler(params))

    view.__name__ = handler.__name__
    return public_view(view)


def _reply(params: dict[str, str]) -> HttpResponse:
    return HttpResponse(encode_response(params), content_type="text/plain;charset=UTF-8")


back_trans = _endpoint(services.handle_back)
query_trans = _endpoint(services.handle_query)
batch_trans = _endpoint(services.handle_batch)
file_download = _endpoint(services.handle_file_transfer)
