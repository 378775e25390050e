"""CSRF on every state-changing request (security.md T5).

The resolver walk of ``test_url_walk`` drives it, so a route is covered the moment it is mounted.
A fully signed-in user whose browser already holds the CSRF cookie (as after any earlier page) sends,
without the token, POST to every route and PUT/PATCH/DELETE to every /api/ route (DRF session
authentication): the answer is 403 *because of CSRF* (Django's rejection is logged on
``django.security.csrf``; DRF says "CSRF Failed"), and no row changes. POST is sent to routes that only
serve GET as well: the middleware refuses before any view runs, so nothing in the map is exempt by accident.

Only the machine-to-machine ACP endpoints, authenticated by the message signature and never by a session,
are ``csrf_exempt``; they are named below, and a scan of the source fails on ``csrf_exempt`` anywhere else.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client
from django.utils.crypto import get_random_string

from tests.core.test_url_walk import (  # noqa: F401  (fast_password_hashing: the walk's autouse fixture)
    NOT_FOUND_VALUE,
    POWER_ROLES,
    ROUTES,
    _ids,
    build_url,
    fast_password_hashing,
    request_and_check,
)
from tests.factories import UserFactory, login_fully

pytestmark = pytest.mark.django_db

# Signed-gateway endpoints: the ACP notify receiver and the sandbox acquirer. A security decision: say why in review.
CSRF_EXEMPT_ROUTES = {"gateway:notify", "sandbox:back", "sandbox:query", "sandbox:batch", "sandbox:file_download"}
# The only modules that may say csrf_exempt (paths relative to the project root).
CSRF_EXEMPT_MODULES = {"payments/gateway/views.py", "payments/sandbox/views.py"}

UNSAFE_API_METHODS = ["post", "put", "patch", "delete"]
CASES = [
    (route, method)
    for route in ROUTES
    if route.name not in CSRF_EXEMPT_ROUTES
    for method in (UNSAFE_API_METHODS if route.is_api else ["post"])
]


def _case_ids(cases):
    return [f"{rid}-{method}" for rid, (_, method) in zip(_ids([r for r, _ in cases]), cases, strict=True)]


class _Records(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record):
        self.messages.append(record.getMessage())


@pytest.fixture
def csrf_log():
    """Messages Django's CSRF middleware logs when it refuses a request."""
    handler = _Records()
    logger = logging.getLogger("django.security.csrf")
    logger.addHandler(handler)
    try:
        yield handler.messages
    finally:
        logger.removeHandler(handler)


@pytest.fixture
def strict_client(merchant_a):
    """A client enforcing CSRF, signed in with both factors as a user holding every merchant role,
    with the CSRF cookie set as a browser has it after any portal page."""
    power = UserFactory(organisation=merchant_a, username="a.csrf", roles=POWER_ROLES, is_staff=True)
    client = Client(enforce_csrf_checks=True)
    login_fully(client, power)
    client.cookies[settings.CSRF_COOKIE_NAME] = get_random_string(32)
    return client


def refused_for_csrf(response, csrf_log: list[str]) -> bool:
    """Whether ``response`` is a 403 given because the CSRF token was missing (not for want of a permission)."""
    if response.status_code != 403:
        return False
    data = getattr(response, "data", None)  # a DRF response, whatever its renderer (JSON, OpenAPI YAML...)
    if data is not None:
        return data["error"]["message"].startswith("CSRF Failed: CSRF token missing")
    return any(m.startswith("Forbidden (CSRF token missing") for m in csrf_log)


@pytest.mark.parametrize(("route", "method"), CASES, ids=_case_ids(CASES))
def test_state_changing_request_without_a_csrf_token_is_refused(route, method, strict_client, csrf_log):
    # given a fully signed-in user whose browser holds the CSRF cookie
    url = build_url(route, {p: NOT_FOUND_VALUE for p in route.params})
    # when a request without the token arrives (request_and_check: no audit event, no row changed)
    response = request_and_check(strict_client, method, url)
    # then it is refused because of CSRF
    assert refused_for_csrf(response, csrf_log), (method.upper(), url, response.status_code, csrf_log)


# --- the allowlist is exact --------------------------------------------------------------------


def _is_drf(route) -> bool:
    from rest_framework.views import APIView

    return route.view is not None and issubclass(route.view, APIView)


def test_the_exempt_routes_are_the_signed_gateway_endpoints():
    # DRF's APIView is csrf_exempt by construction and enforces CSRF in SessionAuthentication instead
    exempt = {r.name for r in ROUTES if getattr(r.callback, "csrf_exempt", False) and not _is_drf(r)}
    assert exempt == CSRF_EXEMPT_ROUTES & {r.name for r in ROUTES}
    assert all(r.is_public for r in ROUTES if r.name in CSRF_EXEMPT_ROUTES)
    assert "gateway:notify" in exempt


def test_exempt_routes_are_not_refused_for_csrf(strict_client, csrf_log):
    # the allowlisted endpoints answer by signature: a token-less POST is not a CSRF 403 (an unsigned one is
    # refused by the endpoint itself, and the receiver audits that refusal, hence no request_and_check here)
    for route in (r for r in ROUTES if r.name in CSRF_EXEMPT_ROUTES):
        response = strict_client.post(build_url(route))
        assert response.status_code != 403, (route.name, response.status_code)
    assert csrf_log == []


# --- the test can fail -------------------------------------------------------------------------


def test_with_the_token_the_same_requests_get_past_csrf(strict_client, csrf_log):
    # the 403s above come from the missing token: with it, Django and DRF let the request reach the view
    token = strict_client.cookies[settings.CSRF_COOKIE_NAME].value
    html = strict_client.post("/batches/999999/cancel/", {"csrfmiddlewaretoken": token})
    api = strict_client.post("/api/v1/refunds/999999/cancel/", HTTP_X_CSRFTOKEN=token)
    assert (html.status_code, api.status_code) == (404, 404)
    assert csrf_log == []


def test_a_view_made_exempt_is_caught(strict_client, csrf_log, monkeypatch):
    # given a session view marked csrf_exempt (what @csrf_exempt does to the function it wraps)
    route = next(r for r in ROUTES if r.name == "set_language")
    monkeypatch.setattr(route.callback, "csrf_exempt", True, raising=False)
    # when the walk's request is made
    response = strict_client.post(build_url(route))
    # then it is not a CSRF refusal, and the walk test fails for that route
    assert not refused_for_csrf(response, csrf_log)
    with pytest.raises(AssertionError, match="POST"):
        test_state_changing_request_without_a_csrf_token_is_refused(route, "post", strict_client, csrf_log)


# --- the source scan ---------------------------------------------------------------------------

ROOT = Path(settings.BASE_DIR)
SKIP_DIRS = {".venv", "var", ".git", "tests", "node_modules", "__pycache__", ".ruff_cache", ".hypothesis"}
# csrf_exempt (decorator, method_decorator, attribute), the request flag that switches the check off, and a
# DRF authentication class that overrides its CSRF check
CSRF_BYPASS = re.compile(r"csrf_exempt|_dont_enforce_csrf_checks|def enforce_csrf\b")


def csrf_bypasses(root: Path) -> dict[str, list[int]]:
    """Project source files (tests, .venv and var left out) that mention a CSRF bypass, with line numbers."""
    found: dict[str, list[int]] = {}
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS)
        for name in sorted(f for f in files if f.endswith(".py")):
            path = Path(folder) / name
            text = path.read_text("utf-8")
            lines = [n for n, line in enumerate(text.splitlines(), 1) if CSRF_BYPASS.search(line)]
            if lines:
                found[path.relative_to(root).as_posix()] = lines
    return found


def test_csrf_exempt_is_used_only_by_the_signed_gateway_modules():
    found = csrf_bypasses(ROOT)
    stray = {module: lines for module, lines in found.items() if module not in CSRF_EXEMPT_MODULES}
    assert stray == {}, f"csrf_exempt outside {sorted(CSRF_EXEMPT_MODULES)}: {stray}"
    # the allowlist holds no stale entry
    assert set(found) == CSRF_EXEMPT_MODULES


def test_the_scan_finds_a_stray_csrf_exempt(tmp_path):
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "views.py").write_text("from django.views.decorators.csrf import csrf_exempt\n")
    (tmp_path / "app" / "api.py").write_text("x = 1\nrequest._dont_enforce_csrf_checks = True\n")
    (tmp_path / "app" / "auth.py").write_text("class A(SessionAuthentication):\n    def enforce_csrf(self, r):\n")
    (tmp_path / ".venv").mkdir()
    (tmp_path / ".venv" / "lib.py").write_text("csrf_exempt\n")
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_x.py").write_text("csrf_exempt\n")
    assert csrf_bypasses(tmp_path) == {"app/api.py": [2], "app/auth.py": [2], "app/views.py": [1]}
