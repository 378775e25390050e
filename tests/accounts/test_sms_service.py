"""sms_send (daily cap, enqueue on commit), the outbox backend, the sms_outbox command and the
DEBUG-only /dev/sms-outbox/ page."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
from django.contrib.auth.models import AnonymousUser
from django.core.management import CommandError, call_command
from django.db import transaction
from django.http import Http404
from django.test import RequestFactory
from django.urls import include, path

from portal.accounts import dev_views
from portal.accounts.models import SmsMessage, SmsStatus
from portal.accounts.sms import SmsDailyCapExceeded, sms_send
from portal.accounts.sms import tasks as sms_tasks
from portal.core.logging import RedactSecretsFilter

pytestmark = pytest.mark.django_db

# Mounted by the page tests that need the /dev/ URLs (see ``pytest.mark.urls`` below).
urlpatterns = [
    path("", include("portal.urls")),
    path("dev/", include("portal.accounts.dev_urls")),
]

CODE_TEXT = "【商户门户】您的验证码是 482913，5分钟内有效。"


@pytest.fixture
def enqueued(monkeypatch):
    """Replace the broker: record the ids ``send_sms_message.delay`` is called with."""
    calls: list[int] = []
    monkeypatch.setattr(sms_tasks.send_sms_message, "delay", calls.append)
    return calls


@pytest.fixture
def run_jobs_inline(monkeypatch):
    """The job runs as soon as it is enqueued, as the worker would."""
    monkeypatch.setattr(sms_tasks.send_sms_message, "delay", lambda pk: sms_tasks.send_sms_message.apply(args=(pk,)))


# --- sms_send ------------------------------------------------------------------------------------


def test_sms_send_in_a_transaction_enqueues_only_on_commit(settings, enqueued, django_capture_on_commit_callbacks):
    settings.SMS_BACKEND = "outbox"
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        with transaction.atomic():
            message = sms_send(phone="13800138000", text=CODE_TEXT, purpose="login")
            assert enqueued == []

    assert enqueued == []
    assert len(callbacks) == 1
    callbacks[0]()
    assert enqueued == [message.pk]
    message.refresh_from_db()
    assert (message.status, message.backend, message.attempts, message.purpose) == (
        SmsStatus.QUEUED,
        "outbox",
        0,
        "login",
    )


def test_rolled_back_transaction_enqueues_nothing(enqueued, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with pytest.raises(RuntimeError), transaction.atomic():
            sms_send(phone="13800138000", text=CODE_TEXT, purpose="login")
            raise RuntimeError("rollback")

    assert callbacks == []
    assert enqueued == []
    assert SmsMessage.objects.count() == 0


def test_daily_cap_refuses_the_message_after_the_cap(settings, enqueued, django_capture_on_commit_callbacks):
    settings.SMS_DAILY_CAP = 3
    # A message older than 24 hours does not count; nor does another phone's.
    SmsMessage.objects.create(
        phone="13800138000", text="old", purpose="login", backend="outbox",
        created_at=datetime.now(UTC) - timedelta(hours=24, minutes=1),
    )  # fmt: skip
    SmsMessage.objects.create(phone="13900139000", text="other", purpose="login", backend="outbox")

    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(3):
            sms_send(phone="13800138000", text=CODE_TEXT, purpose="login")

    with pytest.raises(SmsDailyCapExceeded):
        sms_send(phone="13800138000", text=CODE_TEXT, purpose="login")

    assert SmsMessage.objects.filter(phone="13800138000").count() == 4  # 3 new + the old one, no 4th new
    assert len(enqueued) == 3
    sms_send(phone="13900139000", text=CODE_TEXT, purpose="login")  # another phone still may


# --- outbox backend --------------------------------------------------------------------------------


def test_outbox_logs_the_message_unredacted_and_marks_it_sent(
    settings, caplog, run_jobs_inline, django_capture_on_commit_callbacks
):
    settings.SMS_BACKEND = "outbox"
    caplog.set_level(logging.INFO, logger="portal.sms")

    with django_capture_on_commit_callbacks(execute=True):
        message = sms_send(phone="13800138000", text=CODE_TEXT, purpose="login")

    outbox = [r for r in caplog.records if r.name == "portal.sms" and r.levelno == logging.WARNING]
    assert [r.getMessage() for r in outbox] == [f"SMS outbox → 13800138000: {CODE_TEXT}"]
    assert RedactSecretsFilter().filter(outbox[0])
    assert outbox[0].getMessage() == f"SMS outbox → 13800138000: {CODE_TEXT}"  # the log filter left it intact
    message.refresh_from_db()
    assert (message.status, message.attempts, message.text) == (SmsStatus.SENT, 1, CODE_TEXT)
    assert message.sent_at is not None


def test_outbox_line_with_international_phone_survives_the_card_number_filter(
    caplog, run_jobs_inline, django_capture_on_commit_callbacks
):
    caplog.set_level(logging.WARNING, logger="portal.sms")
    text = "Your code is 482913.\nIgnore this line"

    with django_capture_on_commit_callbacks(execute=True):
        sms_send(phone="+8613800138000", text=text, purpose="login")

    (record,) = [r for r in caplog.records if r.name == "portal.sms"]
    RedactSecretsFilter().filter(record)
    assert record.getMessage() == "SMS outbox → +86 13800138000: Your code is 482913. Ignore this line"


def test_outbox_job_twice_logs_once(caplog, settings):
    caplog.set_level(logging.WARNING, logger="portal.sms")
    message = SmsMessage.objects.create(phone="13800138000", text=CODE_TEXT, purpose="login", backend="outbox")

    results = [sms_tasks.send_sms_message.apply(args=(message.pk,)).get() for _ in range(2)]

    assert results == ["sent", "skipped"]
    assert len([r for r in caplog.records if r.getMessage().startswith("SMS outbox")]) == 1


# --- sms_outbox command ----------------------------------------------------------------------------


def make_history():
    base = datetime(2026, 3, 1, 15, 30, 0, tzinfo=UTC)  # 23:30 in Beijing
    for minutes, phone, text, status in [
        (0, "13800000001", "Your code is 111111", SmsStatus.SENT),
        (1, "13800000002", "Your code is 222222", SmsStatus.FAILED),
        (2, "13800000003", "Your code is 333333", SmsStatus.QUEUED),
    ]:
        SmsMessage.objects.create(
            phone=phone, text=text, purpose="login", backend="outbox", status=status,
            created_at=base + timedelta(minutes=minutes),
        )  # fmt: skip


def test_sms_outbox_command_lists_newest_first_in_beijing_time():
    make_history()
    out = StringIO()

    call_command("sms_outbox", "--last", "2", stdout=out)

    assert out.getvalue().splitlines() == [
        "2026-03-01 23:32:00 13800000003 queued Your code is 333333",
        "2026-03-01 23:31:00 13800000002 failed Your code is 222222",
    ]


def test_sms_outbox_command_defaults_to_ten():
    for n in range(12):
        SmsMessage.objects.create(
            phone="13800138000", text=f"message {n}", purpose="login", backend="outbox",
            created_at=datetime(2026, 3, 1, tzinfo=UTC) + timedelta(minutes=n),
        )  # fmt: skip
    out = StringIO()

    call_command("sms_outbox", stdout=out)

    lines = out.getvalue().splitlines()
    assert len(lines) == 10
    assert lines[0].endswith("message 11")
    assert lines[-1].endswith("message 2")


def test_sms_outbox_command_refuses_zero():
    with pytest.raises(CommandError):
        call_command("sms_outbox", "--last", "0", stdout=StringIO())


# --- /dev/sms-outbox/ --------------------------------------------------------------------------------


def outbox_request():
    request = RequestFactory().get("/dev/sms-outbox/")
    request.user = AnonymousUser()
    return request


def test_outbox_page_lists_messages_newest_first_when_debug(settings):
    settings.DEBUG = True
    make_history()

    response = dev_views.sms_outbox(outbox_request())

    assert response.status_code == 200
    html = response.content.decode()
    assert html.index("333333") < html.index("222222") < html.index("111111")
    assert "2026-03-01 23:32:00" in html
    assert "13800000003" in html


def test_outbox_page_shows_at_most_fifty(settings):
    settings.DEBUG = True
    for n in range(51):
        SmsMessage.objects.create(
            phone="13800138000", text=f"text-{n:02d}-end", purpose="login", backend="outbox",
            created_at=datetime(2026, 3, 1, tzinfo=UTC) + timedelta(minutes=n),
        )  # fmt: skip

    html = dev_views.sms_outbox(outbox_request()).content.decode()

    assert html.count("-end") == 50
    assert "text-00-end" not in html
    assert "text-50-end" in html


def test_outbox_view_is_404_without_debug(settings):
    settings.DEBUG = False
    make_history()

    with pytest.raises(Http404):
        dev_views.sms_outbox(outbox_request())


def test_outbox_url_is_not_mounted_without_debug(client_for, admin_a):
    # portal.urls mounts /dev/ only when DEBUG was on at start-up; tests run with DEBUG off.
    make_history()

    response = client_for(admin_a).get("/dev/sms-outbox/")

    assert response.status_code == 404
    assert b"111111" not in response.content


def test_outbox_view_is_marked_public():
    assert dev_views.sms_outbox.portal_public is True


@pytest.mark.urls(__name__)
def test_mounted_outbox_page_is_reachable_without_signing_in(client, settings):
    # The full middleware stack: a developer who is not signed in needs the code to sign in.
    settings.DEBUG = True
    make_history()

    response = client.get("/dev/sms-outbox/")

    assert response.status_code == 200
    assert "Your code is 333333" in response.content.decode()


@pytest.mark.urls(__name__)
def test_mounted_outbox_page_refuses_post(client, settings):
    settings.DEBUG = True

    response = client.post("/dev/sms-outbox/")

    assert response.status_code == 405
