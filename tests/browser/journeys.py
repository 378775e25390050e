"""Steps shared by the browser journeys: signing in with the SMS code, the step-up page, signing out."""

from __future__ import annotations

import re
import time

from django.conf import settings
from django.contrib.sessions.backends.db import SessionStore
from playwright.sync_api import expect

from portal.accounts.models import SmsMessage
from portal.accounts.stepup import SESSION_OTP_VERIFIED_AT


def newest_sms_id(phone: str) -> int:
    return SmsMessage.objects.filter(phone=phone).order_by("-pk").values_list("pk", flat=True).first() or 0


def sms_code(phone: str, newer_than: int = 0, timeout: float = 10.0) -> str:
    """The 6-digit code of the newest SMS to ``phone`` with an id above ``newer_than``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        message = SmsMessage.objects.filter(phone=phone, pk__gt=newer_than).order_by("-pk").first()
        if message is not None:
            match = re.search(r"(?<!\d)(\d{6})(?!\d)", message.text)
            assert match, f"no 6-digit code in {message.text!r}"
            return match.group(1)
        time.sleep(0.2)
    raise AssertionError(f"no SMS to {phone} after id {newer_than}")


def sign_in(page, base: str, user, password: str) -> None:
    """Password, then the SMS code from the outbox; ends on the home page."""
    before = newest_sms_id(user.phone)
    page.goto(f"{base}/accounts/login/")
    page.locator("input[name=username]").fill(user.username)
    page.locator("input[name=password]").fill(password)
    page.get_by_test_id("login-submit").click()
    expect(page).to_have_url(re.compile(r"/accounts/verify/$"))
    page.locator("input[name=otp_token]").fill(sms_code(user.phone, newer_than=before))
    page.get_by_test_id("verify-submit").click()
    expect(page).to_have_url(f"{base}/")
    expect(page.get_by_test_id("current-user")).to_contain_text(user.username)
    # The home page loads its dashboard with a second request: let it finish before moving on, so that two
    # requests never share the live server's single in-memory SQLite connection at once.
    page.wait_for_load_state("networkidle")


def sign_out(page) -> None:
    page.get_by_test_id("logout").first.click()
    expect(page).to_have_url(re.compile(r"/accounts/login/"))


def make_step_up_stale(context) -> None:
    """Age the second-factor confirmation past STEP_UP_MAX_AGE_SECONDS, as if minutes had passed."""
    cookie = next(c for c in context.cookies() if c["name"] == settings.SESSION_COOKIE_NAME)
    session = SessionStore(session_key=cookie["value"])
    session[SESSION_OTP_VERIFIED_AT] = time.time() - settings.STEP_UP_MAX_AGE_SECONDS - 60
    session.save()


def confirm_step_up(page, phone: str, before: int) -> None:
    """On the step-up page: have a code sent if the page did not send one, type it, confirm."""
    expect(page).to_have_url(re.compile(r"/accounts/step-up/"))
    if not SmsMessage.objects.filter(phone=phone, pk__gt=before).exists():
        page.get_by_test_id("step-up-send").click()
    page.locator("input[name=otp_token]").fill(sms_code(phone, newer_than=before))
    page.get_by_test_id("step-up-submit").click()
    expect(page).not_to_have_url(re.compile(r"/accounts/step-up/"))
