"""``Idempotency-Key`` for money-moving API calls (security.md H1).

The first request with a key (per organisation) is stored with a hash of what it asked; once it
has an answer, the status and body are stored too. The same key with the same request gets that
answer again (``Idempotent-Replayed: true``); with another request, 422; while the first is still
running, 409. Answers that a retry could change are not kept, so the key stays usable: 401/403
(sign-in, permission, step-up code), 409 (a concurrent conflict), 429 and 5xx. Keys are at most 255
characters and may be reused after ``IDEMPOTENCY_KEY_TTL_HOURS`` (24 h).
"""

from __future__ import annotations

import functools
import hashlib
import json
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from rest_framework.response import Response

from ..models import IdempotencyKey

HEADER = "Idempotency-Key"
NOT_KEPT = frozenset({401, 403, 409, 429})


def _ttl() -> timedelta:
    return timedelta(hours=getattr(settings, "IDEMPOTENCY_KEY_TTL_HOURS", 24))


def request_hash(request, view_kwargs: dict) -> str:
    """What the request asks: method, path, its fields, and the SHA-256 of uploaded files."""
    fields = {}
    data = request.data
    for key in sorted(getattr(data, "keys", lambda: [])()):
        value = data.getlist(key) if hasattr(data, "getlist") else data[key]
        fields[key] = [str(v) for v in value] if isinstance(value, list) else str(value)
    files = {}
    for name, upload in sorted(request.FILES.items()):
        digest = hashlib.sha256()
        for block in upload.chunks():
            digest.update(block)
        upload.seek(0)
        files[name] = digest.hexdigest()
        fields.pop(name, None)
    canonical = json.dumps(
        {"method": request.method, "path": request.path, "fields": fields, "files": files},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def _error(code: str, message: str, status: int) -> Response:
    return Response({"error": {"code": code, "message": message}}, status=status)


def idempotent(method):
    """Decorate an API view method (``post``) so that it honours ``Idempotency-Key``."""

    @functools.wraps(method)
    def wrapper(self, request, *args, **kwargs):
        key = request.headers.get(HEADER)
        if key is None:
            return method(self, request, *args, **kwargs)
        if not key or len(key) > 255 or not key.isprintable():
            return _error(
                "idempotency_key_invalid", _("The Idempotency-Key must be 1 to 255 printable characters."), 400
            )
        user = request.user
        digest = request_hash(request, kwargs)
        org_id = user.organisation_id
        IdempotencyKey.objects.filter(organisation_id=org_id, key=key, created_at__lt=timezone.now() - _ttl()).delete()
        try:
            with transaction.atomic():
                row = IdempotencyKey.objects.create(organisation_id=org_id, user=user, key=key, request_hash=digest)
        except IntegrityError:
            existing = IdempotencyKey.objects.filter(organisation_id=org_id, key=key).first()
            if existing is None:
                return _error("idempotency_conflict", _("A request with this Idempotency-Key is in progress."), 409)
            if existing.request_hash != digest:
                return _error(
                    "idempotency_key_reused",
                    _("This Idempotency-Key was already used for another request."),
                    422,
                )
            if not existing.completed:
                return _error("idempotency_conflict", _("A request with this Idempotency-Key is in progress."), 409)
            response = Response(existing.response_body, status=existing.response_status)
            response["Idempotent-Replayed"] = "true"
            return response
        try:
            response = method(self, request, *args, **kwargs)
        except BaseException:
            IdempotencyKey.objects.filter(pk=row.pk).delete()
            raise
        status = response.status_code
        if status in NOT_KEPT or status >= 500 or not isinstance(getattr(response, "data", None), dict | list):
            IdempotencyKey.objects.filter(pk=row.pk).delete()
        else:
            IdempotencyKey.objects.filter(pk=row.pk).update(
                completed=True, response_status=status, response_body=json.loads(json.dumps(response.data, default=str))
            )
        return response

    return wrapper
