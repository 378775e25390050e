"""Security headers on every HTML page: a strict nonce-based CSP, no framing, no sniffing."""

import re

import pytest

pytestmark = pytest.mark.django_db


def _directives(header: str) -> dict[str, list[str]]:
    directives = {}
    for part in header.split(";"):
        tokens = part.split()
        if tokens:
            directives[tokens[0]] = tokens[1:]
    return directives


def _assert_hardened_html(response):
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    csp = _directives(response["Content-Security-Policy"])
    assert csp["object-src"] == ["'none'"]
    assert csp["base-uri"] == ["'none'"]
    assert csp["frame-ancestors"] == ["'none'"]
    assert csp["default-src"] == ["'self'"]
    nonces = [t for t in csp["script-src"] if re.fullmatch(r"'nonce-[A-Za-z0-9+/=_-]{16,}'", t)]
    assert len(nonces) == 1
    for directive, sources in csp.items():
        assert "'unsafe-inline'" not in sources, directive
        assert "'unsafe-eval'" not in sources, directive
    # every script tag on the page carries the nonce of this response
    nonce = nonces[0][len("'nonce-") : -1]
    scripts = re.findall(r"<script\b[^>]*>", response.content.decode())
    assert scripts, "the layout loads at least the Bootstrap bundle"
    assert all(f'nonce="{nonce}"' in tag for tag in scripts), scripts
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"


def test_home_page_headers(client_for, admin_a):
    _assert_hardened_html(client_for(admin_a).get("/"))


def test_login_page_headers(client):
    _assert_hardened_html(client.get("/accounts/login/"))


def test_nonce_changes_on_every_response(client_for, admin_a):
    client = client_for(admin_a)
    first = _directives(client.get("/")["Content-Security-Policy"])["script-src"]
    second = _directives(client.get("/")["Content-Security-Policy"])["script-src"]
    assert first != second


def test_json_responses_are_not_sniffable(client):
    response = client.get("/health/")
    assert response.status_code == 200
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["X-Frame-Options"] == "DENY"
