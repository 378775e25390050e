"""The 400, 403, CSRF-failure and 404 pages: the project's own, in the user's language, saying what happened and
offering a way home, never echoing the request or the exception (security.md; style.md invariant 1: another
organisation's object is a 404 that does not tell whether it exists).

With DEBUG off, as a browser would see them (``raise_request_exception=False``). A signed-in user's language is
their setting; an anonymous visitor's is the browser's Accept-Language.
"""

from __future__ import annotations

import pytest
from django.core.exceptions import BadRequest, PermissionDenied
from django.template.loader import render_to_string
from django.test import Client, override_settings
from django.urls import path, reverse
from django.utils import translation

from portal import urls as portal_urls
from portal.batches.models import Batch
from tests.factories import login_fully

pytestmark = pytest.mark.django_db

SECRET = "internal-reason-7f3a"


def bad(request):
    raise BadRequest(f"malformed ({SECRET})")


def denied(request):
    raise PermissionDenied(f"needs perm x ({SECRET})")


urlpatterns = [path("test-bad/", bad), path("test-denied/", denied), *portal_urls.urlpatterns]

# What each page must say, by language: its heading and a phrase of its text.
PAGES = {
    "400.html": {
        "en": ("The request could not be handled", "Check the address"),
        "zh-hans": ("无法处理该请求", "请检查网址"),
    },
    "403.html": {
        "en": ("You cannot open this page", "ask an administrator of your organisation"),
        "zh-hans": ("您无法打开此页面", "请联系本机构的管理员"),
    },
    "403_csrf.html": {
        "en": ("The form could not be sent", "reload the page and send the form again"),
        "zh-hans": ("表单未能提交", "刷新页面后重新提交"),
    },
    "404.html": {
        "en": ("This page is not available", "not available to your account"),
        "zh-hans": ("此页面无法访问", "您的账户无权访问该页面"),
    },
}
HOME = {"en": "Home", "zh-hans": "首页"}
LANGUAGES = ["en", "zh-hans"]


def assert_page(response, template: str, language: str, status: int) -> str:
    body = response.content.decode()
    assert response.status_code == status
    assert response["Content-Type"].startswith("text/html")
    heading, phrase = PAGES[template][language]
    assert f'<h1 class="h3">{heading}</h1>' in body and phrase in body
    assert f'<a href="/">{HOME[language]}</a>' in body
    assert f'<html lang="{language}">' in body
    other = "en" if language == "zh-hans" else "zh-hans"
    assert not any(text in body for text in PAGES[template][other])
    # Django's own default pages, which these replace
    assert "Not Found" not in body and "CSRF verification failed" not in body and "403 Forbidden" not in body
    return body


def _signed_in(user, language: str, **client_kwargs) -> Client:
    user.language = language
    user.save(update_fields=["language"])
    client = Client(raise_request_exception=False, **client_kwargs)
    login_fully(client, user)
    return client


# --- the templates alone ----------------------------------------------------------------------------


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("template", list(PAGES))
def test_each_page_renders_alone_in_both_languages(template, language):
    # like 500.html: no request, no context processors, nothing left untranslated or unrendered
    with translation.override(language):
        body = render_to_string(template)
    heading, phrase = PAGES[template][language]
    assert heading in body and phrase in body and HOME[language] in body
    other = "en" if language == "zh-hans" else "zh-hans"
    assert not any(text in body for text in PAGES[template][other])
    assert "{%" not in body and "{{" not in body


# --- 404 ----------------------------------------------------------------------------------------------


@override_settings(DEBUG=False)
@pytest.mark.parametrize("language", LANGUAGES)
def test_404_for_an_anonymous_visitor_in_the_browsers_language_without_echoing_the_path(language):
    url = "/no-such-page/%3Cscript%3Ealert(1)%3C/script%3E/"
    response = Client().get(url, HTTP_ACCEPT_LANGUAGE=language)
    body = assert_page(response, "404.html", language, 404)
    assert "no-such-page" not in body and "<script>" not in body and "alert(1)" not in body


@override_settings(DEBUG=False)
@pytest.mark.parametrize("language", LANGUAGES)
def test_404_for_another_organisations_object_is_the_same_as_for_none(merchant_b, operator_a, admin_b, language):
    # given a batch of merchant B, and an id that is nobody's
    theirs = Batch.objects.create(
        kind="refund",
        organisation=merchant_b,
        merchant=merchant_b,
        uploaded_by=admin_b,
        original_name="b-secret-name.txt",
        stored_name="error-pages-test",
        file_format="text",
        size=1,
        sha256="0" * 64,
    )
    client = _signed_in(operator_a, language)
    # when merchant A's operator opens both (in their language, whatever the browser says)
    other_language = "en" if language == "zh-hans" else "zh-hans"
    foreign = client.get(reverse("batches:detail", args=[theirs.pk]), HTTP_ACCEPT_LANGUAGE=other_language)
    missing = client.get(reverse("batches:detail", args=[theirs.pk + 1000]), HTTP_ACCEPT_LANGUAGE=other_language)
    # then both are the same 404 page, which names neither the object nor the reason
    body = assert_page(foreign, "404.html", language, 404)
    assert foreign.content == missing.content
    assert "b-secret-name" not in body and "matches the given query" not in body and "Batch" not in body
    assert f"/batches/{theirs.pk}/" not in body


# --- 403 ----------------------------------------------------------------------------------------------


@override_settings(DEBUG=False)
@pytest.mark.parametrize("language", LANGUAGES)
def test_403_in_the_users_language(admin_a, language):
    # a merchant admin has no batch permission
    response = _signed_in(admin_a, language).get(reverse("batches:list"))
    assert_page(response, "403.html", language, 403)


@override_settings(ROOT_URLCONF=__name__, DEBUG=False)
def test_403_does_not_show_the_exceptions_message(admin_a):
    body = assert_page(_signed_in(admin_a, "en").get("/test-denied/"), "403.html", "en", 403)
    assert SECRET not in body and "needs perm" not in body


# --- CSRF failure ---------------------------------------------------------------------------------------


@override_settings(DEBUG=False)
@pytest.mark.parametrize("language", LANGUAGES)
def test_csrf_failure_for_an_anonymous_visitor_in_the_browsers_language(language):
    client = Client(enforce_csrf_checks=True, raise_request_exception=False)
    response = client.post(reverse("accounts:login"), {"username": "x", "password": "y"}, HTTP_ACCEPT_LANGUAGE=language)
    body = assert_page(response, "403_csrf.html", language, 403)
    assert "CSRF cookie not set" not in body  # the technical reason stays in the log


@override_settings(DEBUG=False)
@pytest.mark.parametrize("language", LANGUAGES)
def test_csrf_failure_for_a_signed_in_user_in_their_language(operator_a, language):
    client = _signed_in(operator_a, language, enforce_csrf_checks=True)
    response = client.post(reverse("batches:cancel", args=[1]), {"reason": "x"})
    assert_page(response, "403_csrf.html", language, 403)


# --- 400 ----------------------------------------------------------------------------------------------


@override_settings(DEBUG=False, ALLOWED_HOSTS=["testserver"])
@pytest.mark.parametrize("language", LANGUAGES)
def test_400_for_an_unknown_host_in_the_browsers_language(language):
    response = Client(raise_request_exception=False).get("/", HTTP_HOST="evil.example", HTTP_ACCEPT_LANGUAGE=language)
    body = assert_page(response, "400.html", language, 400)
    assert "evil.example" not in body


@override_settings(ROOT_URLCONF=__name__, DEBUG=False)
@pytest.mark.parametrize("language", LANGUAGES)
def test_400_in_the_users_language_without_the_exceptions_message(admin_a, language):
    body = assert_page(_signed_in(admin_a, language).get("/test-bad/"), "400.html", language, 400)
    assert SECRET not in body and "malformed" not in body
