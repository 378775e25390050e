"""The resolver walk: every URL pattern of ``portal.urls`` is denied by default (issue 2, section 7).

Data-driven: the routes are discovered by walking ``get_resolver()`` recursively, so a new URL is
covered the moment it is mounted. For every route and for GET and POST:

* every view declares its permission (``permission_required`` / ``required_permission``) or says
  ``any_signed_in_user = True``, or is one of the few allow-listed public / password-step views;
* anonymous → 302 to the login page (401 JSON under /api/);
* password only, no second factor → 302 to /accounts/verify/ (401 JSON under /api/);
* both factors but no role → 403 (or 404, or 405 for a wrong method), except views open to any
  signed-in user;
* both factors and the view's permission, another organisation's object → 404;
* and no denial writes an audit event or changes any row (sessions aside).
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from typing import Any

import pytest
from django.apps import apps
from django.contrib.sessions.models import Session
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, resolve
from django.urls.exceptions import Resolver404
from django.utils.regex_helper import normalize

from portal.accounts.roles import permissions_for_roles
from portal.audit.models import AuditEvent
from portal.audit.services import audit_record
from portal.core.api import IsFullyAuthenticated
from portal.core.mixins import PortalPermissionMixin
from tests.factories import UserFactory, login_fully, login_password_only

pytestmark = pytest.mark.django_db

# Reachable without signing in. Adding a name here is a security decision: say why in review.
PUBLIC_ALLOWED = {
    "accounts:login",
    "accounts:logout",
    "set_language",
    "core:health",
    "dev:sms_outbox",
    # Machine-to-machine ACP endpoints, authenticated by the message signature, not a session.
    "gateway:notify",
    "sandbox:back",
    "sandbox:query",
    "sandbox:batch",
    "sandbox:file_download",
}
# Reachable after the password step, before the second factor.
PASSWORD_STEP_ALLOWED = {"accounts:verify", "accounts:resend", "accounts:logout"}
# The Django admin: OTPAdminSite (both factors) + is_staff; denial is its redirect to its login page.
ADMIN_NAMESPACE = "admin"
NOT_FOUND_VALUE = "999999"


@dataclass(frozen=True)
class Route:
    name: str  # "namespace:name", or the regex when the pattern has no name
    regex: str
    callback: Any

    def __str__(self) -> str:
        return self.name

    @property
    def view(self):
        return getattr(self.callback, "view_class", None) or getattr(self.callback, "cls", None)

    @property
    def initkwargs(self) -> dict:
        return getattr(self.callback, "view_initkwargs", None) or getattr(self.callback, "initkwargs", None) or {}

    def attr(self, name: str, default=None):
        if name in self.initkwargs:
            return self.initkwargs[name]
        for obj in (self.callback, self.view):
            if obj is not None and hasattr(obj, name):
                return getattr(obj, name)
        return default

    @property
    def is_admin(self) -> bool:
        return self.name.split(":")[0] == ADMIN_NAMESPACE

    @property
    def is_api(self) -> bool:
        return self.params_free_path().startswith("/api/")

    @property
    def is_public(self) -> bool:
        return bool(self.attr("portal_public", False))

    @property
    def is_password_step(self) -> bool:
        return bool(self.attr("portal_password_step", False))

    @property
    def any_signed_in_user(self) -> bool:
        return bool(self.attr("any_signed_in_user", False))

    @property
    def permission(self) -> str | None:
        return self.attr("permission_required") or self.attr("required_permission")

    def serves(self, method: str) -> bool:
        """Whether the view has a handler for ``method`` (else Django or DRF answers 405)."""
        actions = self.attr("actions")
        if actions:
            return method in actions
        if self.view is None:
            return True
        return method in self.attr("http_method_names", []) and hasattr(self.view, method)

    @property
    def params(self) -> list[str]:
        return normalize(self.regex)[0][1]

    def params_free_path(self) -> str:
        return "/" + normalize(self.regex)[0][0].split("%(")[0]


def _walk(resolver: URLResolver, prefix: str = "", namespace: str = ""):
    for pattern in resolver.url_patterns:
        regex = pattern.pattern.regex.pattern
        regex = regex[1:] if regex.startswith("^") else regex
        if isinstance(pattern, URLResolver):
            ns = f"{namespace}{pattern.namespace}:" if pattern.namespace else namespace
            yield from _walk(pattern, prefix + regex, ns)
        elif isinstance(pattern, URLPattern):
            name = f"{namespace}{pattern.name}" if pattern.name else f"{namespace}<{prefix + regex}>"
            yield Route(name=name, regex="^" + prefix + regex, callback=pattern.callback)


def all_routes() -> list[Route]:
    seen, routes = set(), []
    for route in _walk(get_resolver()):
        key = (route.name, route.regex)
        if key not in seen:
            seen.add(key)
            routes.append(route)
    return routes


ROUTES = all_routes()
PORTAL_ROUTES = [r for r in ROUTES if not r.is_admin]
# Which routes each denial test applies to, decided at collection so that nothing is skipped.
SIGNED_IN_ONLY = [r for r in ROUTES if not r.is_public]
FULLY_SIGNED_IN_ONLY = [r for r in SIGNED_IN_ONLY if not r.is_password_step]
# the admin's own login form only tells a signed-in non-staff user that they are not authorised
ROLE_REQUIRED = [r for r in FULLY_SIGNED_IN_ONLY if not r.any_signed_in_user and r.name != f"{ADMIN_NAMESPACE}:login"]
POWER_ROLES = ["merchant_admin", "merchant_operator", "merchant_reviewer", "auditor"]
OBJECT_ROUTES = [
    r
    for r in FULLY_SIGNED_IN_ONLY
    if r.params and not r.is_admin and (r.permission is None or r.permission in permissions_for_roles(POWER_ROLES))
]


def _ids(routes):
    return [re.sub(r"[^\w:.<>-]", "_", r.name) for r in routes]


# --- URL building ------------------------------------------------------------------------------


def _candidates(param: str, preferred: list[str]) -> list[str]:
    by_name = {
        "format": ["json"],
        "app_label": [a.label for a in apps.get_app_configs()],
        "model_name": [m._meta.model_name for m in apps.get_models()],
    }
    generic = [NOT_FOUND_VALUE, "x", "00000000-0000-0000-0000-000000000000", "1", "a-b"]
    return preferred + by_name.get(param, []) + generic


def build_url(route: Route, values: dict[str, str] | None = None) -> str:
    """A URL that resolves to ``route``, with ``values`` for its parameters where they fit."""
    fmt, params = normalize(route.regex)[0]
    values = values or {}
    options = [_candidates(p, [values[p]] if p in values else []) for p in params]
    first = None
    for combo in itertools.islice(itertools.product(*options), 5000):
        url = "/" + fmt % dict(zip(params, combo, strict=True))
        first = first or url
        try:
            if resolve(url).func is route.callback:
                return url
        except Resolver404:
            continue
    raise AssertionError(f"cannot build a URL for {route} (tried e.g. {first})")


# --- what a view serves ------------------------------------------------------------------------


def _model_of(route: Route, user) -> type | None:
    """The model the view looks objects up in, when the view says so (attribute or queryset)."""
    view = route.view
    if view is None:
        return None
    for attr in ("model", "queryset"):
        value = route.attr(attr)
        if value is not None:
            return getattr(value, "model", value)
    serializer = route.attr("serializer_class")
    if serializer is not None and hasattr(getattr(serializer, "Meta", None), "model"):
        return serializer.Meta.model
    try:
        from django.test import RequestFactory

        request = RequestFactory().get("/")
        request.user = user
        instance = view(**{k: v for k, v in route.initkwargs.items() if hasattr(view, k)})
        instance.setup(request) if hasattr(instance, "setup") else None
        instance.request = request
        instance.kwargs = {}
        return instance.get_queryset().model
    except Exception:  # the view has no queryset of its own: fall back to the hints
        return None


# Views that look objects up by hand (get_object_or_404 on a selector) name their model here.
MODEL_HINTS = {"accounts:user_": "accounts.User", "audit:event_": "audit.AuditEvent"}


def _hinted_model(route: Route):
    for prefix, label in MODEL_HINTS.items():
        if route.name.startswith(prefix):
            return apps.get_model(label)
    return None


def other_org_value(route: Route, param: str, user) -> str:
    """A value of ``param`` naming an existing object ``user`` may not see, else a missing one."""
    model = _model_of(route, user) or _hinted_model(route)
    if model is None or not hasattr(model.objects.all(), "visible_to"):
        return NOT_FOUND_VALUE
    hidden = model.objects.exclude(pk__in=model.objects.all().visible_to(user).values("pk")).order_by("pk").first()
    if hidden is None:
        return NOT_FOUND_VALUE
    if param in {"pk", "id", "object_id"}:
        return str(hidden.pk)
    return str(getattr(hidden, param, NOT_FOUND_VALUE))


# --- the invariant on every denial -------------------------------------------------------------


def snapshot() -> dict[str, int]:
    """Row counts of every table the portal owns (sessions aside: a request may touch its own)."""
    return {
        m._meta.label: m._default_manager.count()
        for m in apps.get_models()
        if m is not Session and not m._meta.proxy and m._meta.managed
    }


def request_and_check(client: Client, method: str, url: str):
    before_audit = AuditEvent.objects.count()
    before = snapshot()
    response = getattr(client, method)(url, secure=False)
    assert AuditEvent.objects.count() == before_audit, f"{method.upper()} {url} wrote an audit event on denial"
    after = snapshot()
    changed = {k: (before[k], after[k]) for k in before if before[k] != after[k]}
    assert changed == {}, f"{method.upper()} {url} changed rows on denial: {changed}"
    return response


def _is_json_401(response) -> bool:
    return response.status_code == 401 and response["Content-Type"].startswith("application/json")


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    # Hundreds of users are created here and none signs in with a password: skip Argon2's cost.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def world(merchant_a, merchant_b, admin_a, admin_b, acquirer_admin):
    """Objects of another organisation, so that object URLs can point at something real."""
    audit_record(action="test.other_org", actor=admin_b)
    audit_record(action="test.own_org", actor=admin_a)
    return {"other_user": admin_b}


# --- the tests ---------------------------------------------------------------------------------


def test_the_walk_sees_the_whole_url_map():
    names = {r.name for r in ROUTES}
    assert {"core:home", "accounts:login", "accounts:verify", "accounts:user_list", "audit:event_list"} <= names
    assert any(r.is_admin for r in ROUTES)
    assert any(r.is_api for r in ROUTES)


@pytest.mark.parametrize("route", PORTAL_ROUTES, ids=_ids(PORTAL_ROUTES))
def test_view_declares_its_permission(route):
    if route.is_public:
        assert route.name in PUBLIC_ALLOWED, f"{route} is public but not in PUBLIC_ALLOWED"
        return
    if route.is_password_step:
        assert route.name in PASSWORD_STEP_ALLOWED, f"{route} is open before the second factor"
        return
    view = route.view
    declared = route.permission is not None or route.any_signed_in_user
    assert declared, f"{route} declares neither a permission nor any_signed_in_user"
    if route.permission is not None:
        assert not route.any_signed_in_user, f"{route} declares a permission and any_signed_in_user"
    if view is None:
        pytest.fail(f"{route} is a function view without a portal permission mixin")
    from rest_framework.views import APIView

    if issubclass(view, APIView):
        classes = route.attr("permission_classes", [])
        assert any(issubclass(c, IsFullyAuthenticated) for c in classes), f"{route} lacks IsFullyAuthenticated"
    else:
        assert issubclass(view, PortalPermissionMixin), f"{route} does not use PortalPermissionMixin"


def test_public_allowlist_matches_the_views():
    public = {r.name for r in PORTAL_ROUTES if r.is_public}
    # every allow-listed name that is mounted must actually be public (dev pages only when DEBUG)
    mounted = {r.name for r in PORTAL_ROUTES}
    assert public == PUBLIC_ALLOWED & mounted


@pytest.mark.parametrize("method", ["get", "post"])
@pytest.mark.parametrize("route", SIGNED_IN_ONLY, ids=_ids(SIGNED_IN_ONLY))
def test_anonymous_is_sent_to_login(route, method, world):
    url = build_url(route, {p: NOT_FOUND_VALUE for p in route.params})
    response = request_and_check(Client(), method, url)
    if route.is_api:
        assert _is_json_401(response), (url, response.status_code)
    else:
        assert response.status_code == 302, (url, response.status_code)
        assert response["Location"].startswith("/accounts/login/"), (url, response["Location"])


@pytest.mark.parametrize("method", ["get", "post"])
@pytest.mark.parametrize("route", FULLY_SIGNED_IN_ONLY, ids=_ids(FULLY_SIGNED_IN_ONLY))
def test_password_only_is_sent_to_the_second_factor(route, method, world, admin_a):
    client = Client()
    login_password_only(client, admin_a)
    url = build_url(route, {p: NOT_FOUND_VALUE for p in route.params})
    response = request_and_check(client, method, url)
    if route.is_api:
        assert _is_json_401(response), (url, response.status_code)
    else:
        assert response.status_code == 302, (url, response.status_code)
        assert response["Location"].startswith("/accounts/verify/"), (url, response["Location"])


@pytest.mark.parametrize("method", ["get", "post"])
@pytest.mark.parametrize("route", ROLE_REQUIRED, ids=_ids(ROLE_REQUIRED))
def test_user_without_a_role_is_refused(route, method, world, merchant_a):
    nobody = UserFactory(organisation=merchant_a, username="a.nobody")
    client = Client()
    login_fully(client, nobody)
    values = {p: other_org_value(route, p, nobody) for p in route.params}
    url = build_url(route, values)
    response = request_and_check(client, method, url)
    if route.is_admin:
        assert response.status_code in {302, 403, 404}, (url, response.status_code)
        if response.status_code == 302:
            assert response["Location"].startswith("/admin/"), (url, response["Location"])
            assert not response["Location"].startswith("/admin/r/"), (url, response["Location"])
        return
    assert response.status_code in {403, 404, 405}, (url, response.status_code)


@pytest.mark.parametrize("method", ["get", "post"])
@pytest.mark.parametrize("route", OBJECT_ROUTES, ids=_ids(OBJECT_ROUTES))
def test_another_organisations_object_is_not_found(route, method, world, merchant_a):
    # given a merchant A user holding every merchant role, hence the route's permission
    power = UserFactory(organisation=merchant_a, username="a.power", roles=POWER_ROLES)
    client = Client()
    login_fully(client, power)
    # when it asks for an object of merchant B (or a missing one)
    values = {p: other_org_value(route, p, power) for p in route.params}
    url = build_url(route, values)
    response = request_and_check(client, method, url)
    # then the answer is 404 (405 for a method the view does not serve), never 403 nor the object
    allowed = {404} if route.serves(method) else {404, 405}
    assert response.status_code in allowed, (url, response.status_code)


# --- the walk itself can fail ----------------------------------------------------------------


def test_an_undeclared_view_fails_the_declaration_test():
    from django.views.generic import TemplateView

    class Undeclared(PortalPermissionMixin, TemplateView):
        pass

    class NotAPortalView(TemplateView):
        permission_required = "users.view"

    for view in (Undeclared, NotAPortalView):
        route = Route(name="fake:undeclared", regex="^fake/\\Z", callback=view.as_view())
        with pytest.raises((AssertionError, pytest.fail.Exception)):
            test_view_declares_its_permission(route)


def test_a_stray_public_view_fails_the_declaration_test():
    from portal.core.mixins import public_view

    route = Route(name="fake:open", regex="^fake/\\Z", callback=public_view(lambda request: None))
    with pytest.raises(AssertionError, match="not in PUBLIC_ALLOWED"):
        test_view_declares_its_permission(route)


def test_object_urls_point_at_another_organisations_object(world, merchant_a, admin_b):
    # the wrong-organisation test really names merchant B's user, not a missing one
    route = next(r for r in ROUTES if r.name == "accounts:user_detail")
    viewer = UserFactory(organisation=merchant_a, roles=POWER_ROLES)
    assert build_url(route, {"pk": other_org_value(route, "pk", viewer)}) == f"/accounts/users/{admin_b.pk}/"


def test_a_write_on_denial_is_detected(admin_a):
    class Writes:
        def get(self, url, secure=False):
            audit_record(action="test.leak", actor=admin_a)

    with pytest.raises(AssertionError, match="wrote an audit event"):
        request_and_check(Writes(), "get", "/x/")
