"""The browser lane: Playwright (sync API) driving Debian's Chromium, headless, against live_server.

Never downloads a browser: Chromium is ``/usr/bin/chromium`` (``PORTAL_CHROMIUM`` overrides it).
Every test here is marked ``browser`` automatically and runs against pytest-django's
``live_server`` with real transactions (``django_db(transaction=True)``), SQLite in memory,
Celery tasks run eagerly (so an SMS is "sent" into the outbox table at once).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
SCREENSHOTS = ROOT / "var" / "screenshots"
CHROMIUM = Path(os.environ.get("PORTAL_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Playwright's sync API runs an event loop in this thread; Django must still allow ORM calls here.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


def pytest_collection_modifyitems(config, items):
    for item in items:
        if HERE in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.browser)
            if not CHROMIUM.exists():
                item.add_marker(pytest.mark.skip(reason=f"{CHROMIUM} not found: apt-get install chromium"))


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def browser_context_for(browser):
    """``browser_context_for(locale="zh-CN")`` → a fresh context (cookies, language) closed after the test."""
    contexts = []

    def make(locale: str = "en-US"):
        context = browser.new_context(locale=locale, extra_http_headers={"Accept-Language": locale})
        context.set_default_timeout(15_000)
        contexts.append(context)
        return context

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def page(browser_context_for):
    return browser_context_for().new_page()


@pytest.fixture
def screenshot():
    """``screenshot(page, "name")`` saves var/screenshots/name.png for review."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def take(page, name: str) -> Path:
        path = SCREENSHOTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take


@pytest.fixture
def live_sandbox(settings, live_server, tmp_path_factory):
    """The portal and its embedded sandbox acquirer on the live server, jobs run at once in the serving thread.

    The gateway client (``ACP_BASE_URL``) and the sandbox's notifications (``ACP_BACK_URL``) both point at
    ``live_server``; uploads and produced files go to a private MEDIA_ROOT.
    """
    from payments.gateway import config
    from portal.celery import app as celery_app

    sandbox = config.ensure_sandbox_material(tmp_path_factory.getbasetemp() / "browser-sandbox")
    settings.SANDBOX_ENABLED = True
    settings.SANDBOX_DIR = sandbox
    settings.ACP_SIGN_PKCS12_PATH = ""
    settings.ACP_SIGN_KEY_PATH = str(sandbox / "portal_sign.key")
    settings.ACP_SIGN_CERT_PATH = str(sandbox / "portal_sign.crt")
    settings.ACP_ROOT_CERT_PATHS = [str(sandbox / "root.crt")]
    settings.ACP_MIDDLE_CERT_PATHS = [str(sandbox / "middle.crt")]
    settings.ACP_VERIFY_CERT_PATHS = [str(sandbox / "sign.crt")]
    settings.ACP_ALLOWED_OWNERS = ["中国银联股份有限公司"]
    settings.ACP_QUERY_SLEEP = False
    settings.SANDBOX_NOTIFY_TIME_SCALE = 1 / 60
    settings.SANDBOX_PENDING_SECONDS = 20
    settings.ACP_BASE_URL = live_server.url + "/sandbox/acp"
    settings.ACP_BACK_URL = live_server.url + "/gateway/acp/notify/"
    settings.CELERY_TASK_ALWAYS_EAGER = True
    settings.MEDIA_ROOT = tmp_path_factory.mktemp("media")
    before = celery_app.conf.task_always_eager
    celery_app.conf.update(task_always_eager=True)
    yield live_server
    celery_app.conf.update(task_always_eager=before)
