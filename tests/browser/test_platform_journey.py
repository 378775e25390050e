"""The platform journey in a real browser (issue 2, section 7).

Log in with the SMS code in Chinese (browser locale zh-CN → the page is in Chinese), switch to
English, create a user as merchant admin (with step-up), log in as that user and change the
forced password, log out. Screenshots go to var/screenshots/ for review.
"""

from __future__ import annotations

import re
import time

import pytest
from django.conf import settings
from django.contrib.sessions.backends.db import SessionStore
from playwright.sync_api import expect

from portal.accounts.models import SmsMessage, User
from portal.accounts.stepup import SESSION_OTP_VERIFIED_AT
from tests.factories import PASSWORD, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CJK = re.compile(r"[\u4e00-\u9fff]")
NEW_PASSWORD = "Fresh-pass-2026x"


def sms_code(phone: str, newer_than: int = 0, timeout: float = 10.0) -> tuple[str, int]:
    """The 6-digit code of the newest SMS to ``phone`` with an id above ``newer_than``, and its id."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        message = SmsMessage.objects.filter(phone=phone, pk__gt=newer_than).order_by("-pk").first()
        if message is not None:
            match = re.search(r"(?<!\d)(\d{6})(?!\d)", message.text)
            assert match, f"no 6-digit code in {message.text!r}"
            return match.group(1), message.pk
        time.sleep(0.2)
    raise AssertionError(f"no SMS to {phone} after id {newer_than}")


def newest_sms_id(phone: str) -> int:
    return SmsMessage.objects.filter(phone=phone).order_by("-pk").values_list("pk", flat=True).first() or 0


def make_step_up_stale(context) -> None:
    """Age the second-factor confirmation past STEP_UP_MAX_AGE_SECONDS, as if minutes had passed."""
    cookie = next(c for c in context.cookies() if c["name"] == settings.SESSION_COOKIE_NAME)
    session = SessionStore(session_key=cookie["value"])
    session[SESSION_OTP_VERIFIED_AT] = time.time() - settings.STEP_UP_MAX_AGE_SECONDS - 60
    session.save()


def sign_in(page, base: str, username: str, password: str, phone: str) -> None:
    before = newest_sms_id(phone)
    page.goto(f"{base}/accounts/login/")
    page.locator("input[name=username]").fill(username)
    page.locator("input[name=password]").fill(password)
    page.get_by_test_id("login-submit").click()
    expect(page).to_have_url(re.compile(r"/accounts/verify/$"))
    code, _ = sms_code(phone, newer_than=before)
    page.locator("input[name=otp_token]").fill(code)
    page.get_by_test_id("verify-submit").click()


def sign_out(page, base: str) -> None:
    page.get_by_test_id("logout").first.click()
    expect(page).to_have_url(re.compile(r"/accounts/login/"))


def test_platform_journey(live_server, browser_context_for, screenshot, merchant_a):
    base = live_server.url
    admin = UserFactory(organisation=merchant_a, username="m.admin", roles=["merchant_admin"], phone="13900000001")
    context = browser_context_for("zh-CN")
    page = context.new_page()
    html = page.locator("html")

    # --- a Chinese browser gets the login page in Chinese ------------------------------------
    page.goto(f"{base}/accounts/login/")
    expect(html).to_have_attribute("lang", "zh-hans")
    # the project's own strings, not only Django's built-in labels, are in Chinese
    assert CJK.search(page.get_by_test_id("login-submit").inner_text()), "the login page is not in Chinese"
    screenshot(page, "login-zh")

    # --- password, then the SMS code --------------------------------------------------------------
    sign_in(page, base, "m.admin", PASSWORD, admin.phone)
    expect(page).to_have_url(f"{base}/")
    expect(html).to_have_attribute("lang", "zh-hans")
    expect(page.get_by_test_id("current-user")).to_contain_text("m.admin")
    sections = page.locator("nav a[data-nav]").all_inner_texts()
    assert sections and all(CJK.search(label) for label in sections), f"navigation not in Chinese: {sections}"
    screenshot(page, "home-zh")

    # --- switch to English, remembered on the account --------------------------------------------
    page.get_by_test_id("language-en").click()
    expect(html).to_have_attribute("lang", "en")
    expect(page.get_by_role("link", name="Users", exact=True)).to_be_visible()
    sections = page.locator("nav a[data-nav]").all_inner_texts()
    assert not any(CJK.search(label) for label in sections), f"navigation still in Chinese: {sections}"
    assert User.objects.get(pk=admin.pk).language == "en"
    screenshot(page, "home-en")

    # --- create a user: the sensitive action asks for a fresh code (step-up) ----------------------
    make_step_up_stale(context)
    page.get_by_role("link", name="Users", exact=True).click()
    expect(page).to_have_url(re.compile(r"/accounts/users/$"))
    before = newest_sms_id(admin.phone)
    page.get_by_test_id("add-user").click()
    expect(page).to_have_url(re.compile(r"/accounts/step-up/"))
    if SmsMessage.objects.filter(phone=admin.phone, pk__gt=before).count() == 0:
        page.get_by_test_id("step-up-send").click()  # the page did not send a code by itself
    code, _ = sms_code(admin.phone, newer_than=before)
    page.locator("input[name=otp_token]").fill(code)
    page.get_by_test_id("step-up-submit").click()
    expect(page).to_have_url(re.compile(r"/accounts/users/add/$"))
    page.get_by_label("Username").fill("m.newbie")
    page.locator("input[name=phone]").fill("13900000002")
    page.get_by_label("Merchant operator").check()
    page.get_by_test_id("submit").click()
    temporary = page.get_by_test_id("initial-password").inner_text().strip()
    assert len(temporary) >= 12
    newbie = User.objects.get(username="m.newbie")
    assert newbie.organisation_id == merchant_a.pk
    assert newbie.must_change_password is True
    assert newbie.role_codes == {"merchant_operator"}
    screenshot(page, "user-created")
    sign_out(page, base)

    # --- the new user signs in and must change the password first ---------------------------------
    sign_in(page, base, "m.newbie", temporary, "13900000002")
    expect(page).to_have_url(re.compile(r"/accounts/password/change/"))
    expect(page.get_by_test_id("must-change")).to_be_visible()
    page.locator("input[name=current_password]").fill(temporary)
    page.locator("input[name=new_password1]").fill(NEW_PASSWORD)
    page.locator("input[name=new_password2]").fill(NEW_PASSWORD)
    page.get_by_test_id("password-change-submit").click()
    expect(page).not_to_have_url(re.compile(r"/accounts/password/change/"))
    newbie.refresh_from_db()
    assert newbie.must_change_password is False
    assert newbie.check_password(NEW_PASSWORD)
    page.goto(f"{base}/")
    expect(page.get_by_test_id("current-user")).to_contain_text("m.newbie")

    # --- log out: the session is gone, the portal sends us back to the login page ---------------
    sign_out(page, base)
    page.goto(f"{base}/")
    expect(page).to_have_url(re.compile(r"/accounts/login/"))
