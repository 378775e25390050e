"""A server error shows a generic page, never a traceback or the settings (security.md T8, ASVS 16.5.1).

The URLconf of this module is the portal's plus one view that fails; with DEBUG off the client answers
as a browser would see it (``raise_request_exception=False``). The project's 500 page is rendered by
``django.views.defaults.server_error`` with an empty context, in the language of the request.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from django.conf import settings
from django.template.loader import render_to_string
from django.test import Client, override_settings
from django.urls import path
from django.utils import translation

from portal import urls as portal_urls
from tests.factories import login_fully

pytestmark = pytest.mark.django_db

SECRET_IN_MESSAGE = "db-password=hunter2-0xC0FFEE"
SECRET_IN_LOCALS = "local-api-secret-5a5a5a5a"


def boom(request):
    api_secret = SECRET_IN_LOCALS  # what a debug page would list among the frame's variables
    raise RuntimeError(f"cannot reach the ledger ({SECRET_IN_MESSAGE}, {api_secret})")


urlpatterns = [path("test-boom/", boom, name="test_boom"), *portal_urls.urlpatterns]

PAGE = {
    "en": ("Something went wrong on our side", "The error has been recorded"),
    "zh-hans": ("系统出现错误", "错误已记录"),
}


def leaks(body: str) -> list[str]:
    """What of the failure or the configuration a 500 page shows."""
    needles = [
        "Traceback",
        "RuntimeError",
        SECRET_IN_MESSAGE,
        SECRET_IN_LOCALS,
        "api_secret",
        settings.SECRET_KEY,
        "SECRET_KEY",
        "DATABASES",
        "INSTALLED_APPS",
        "DJANGO_SETTINGS_MODULE",
        str(Path(settings.BASE_DIR)),
        "test_server_error",
    ]
    return [n for n in needles if n in body]


def _fail_as(user) -> tuple:
    client = Client(raise_request_exception=False)
    login_fully(client, user)
    return client.get("/test-boom/")


@override_settings(ROOT_URLCONF=__name__, DEBUG=False)
@pytest.mark.parametrize("language", ["en", "zh-hans"])
def test_an_exception_answers_the_generic_500_page_in_the_users_language(admin_a, caplog, language):
    # given a signed-in user (both factors) whose language is ``language``
    admin_a.language = language
    admin_a.save(update_fields=["language"])
    # when a view fails
    with caplog.at_level(logging.ERROR, logger="django.request"):
        response = _fail_as(admin_a)
    # then the answer is the project's 500 page in that language, with nothing of the failure in it
    body = response.content.decode()
    assert response.status_code == 500
    assert response["Content-Type"].startswith("text/html")
    assert leaks(body) == []
    heading, recorded = PAGE[language]
    assert heading in body and recorded in body
    assert f'<html lang="{language}">' in body
    # and the failure is logged for the operators, not shown to the user
    assert [r.levelname for r in caplog.records if r.name == "django.request"] == ["ERROR"]


@pytest.mark.parametrize("language", ["en", "zh-hans"])
def test_the_500_template_renders_alone_in_both_languages(language):
    # server_error renders it without a request or context processors: it must need neither
    with translation.override(language):
        body = render_to_string("500.html")
    assert all(text in body for text in PAGE[language])
    other = PAGE["zh-hans" if language == "en" else "en"]
    assert not any(text in body for text in other)
    assert "{%" not in body and "{{" not in body


@override_settings(ROOT_URLCONF=__name__, DEBUG=True)
def test_the_leak_check_sees_a_debug_page(admin_a):
    # the checks above can fail: with DEBUG on, the technical 500 page shows the traceback and the secrets
    response = _fail_as(admin_a)
    assert response.status_code == 500
    assert {"Traceback", "RuntimeError", SECRET_IN_MESSAGE, SECRET_IN_LOCALS} <= set(leaks(response.content.decode()))
