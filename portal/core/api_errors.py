"""One error envelope for the REST API."""

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404
from rest_framework import exceptions
from rest_framework.views import exception_handler as drf_exception_handler


def exception_handler(exc, context):
    """Every error as ``{"error": {"code", "message", "fields"?}}`` with the right status."""
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    data = response.data
    code = getattr(exc, "default_code", "error")
    if isinstance(exc, exceptions.APIException):
        codes = exc.get_codes()
        if isinstance(codes, str):
            code = codes
    if isinstance(data, dict) and set(data) == {"detail"}:
        body = {"error": {"code": code, "message": str(data["detail"])}}
    else:
        body = {"error": {"code": "invalid", "message": str(exceptions.ValidationError.default_detail), "fields": data}}
    response.data = body
    return response
