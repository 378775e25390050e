"""The provider backends (http, aliyun) against a real HTTP server on 127.0.0.1, and the job's
claim-retry-record cycle around them."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, quote, urlsplit

import pytest
from celery.exceptions import Retry

from portal.accounts.models import SmsMessage, SmsStatus
from portal.accounts.sms import backends, delivery
from portal.accounts.sms.tasks import send_sms_message

pytestmark = pytest.mark.django_db

SECRET = "sms-test-secret"
ALIYUN_SECRET = "aliyun-test-secret"
TEXT = "Your merchant portal code is 482913. It expires in 5 minutes."


class ProviderServer:
    """A provider on a random local port: records every request, answers from a script."""

    def __init__(self):
        self.hits: list[dict] = []
        self.answers: list[tuple[int, dict]] = []
        self.default = (200, {"id": "prov-42"})
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                server.hits.append(
                    {"method": self.command, "path": self.path, "headers": dict(self.headers), "body": body}
                )
                status, answer = server.answers.pop(0) if server.answers else server.default
                out = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_port
        self.url = f"http://127.0.0.1:{self.port}/sms"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def provider():
    server = ProviderServer()
    yield server
    server.close()


@pytest.fixture
def sleeps(monkeypatch):
    """Record the backoff instead of waiting for it."""
    recorded: list[float] = []
    monkeypatch.setattr(backends, "_sleep", recorded.append)
    return recorded


@pytest.fixture
def http_backend(settings, provider):
    settings.SMS_BACKEND = "http"
    settings.SMS_HTTP_URL = provider.url
    settings.SMS_HTTP_SECRET = SECRET
    settings.SMS_HTTP_TIMEOUT = 2.0
    settings.SMS_HTTP_RETRIES = 3
    return provider


@pytest.fixture
def aliyun_backend(settings, provider):
    settings.SMS_BACKEND = "aliyun"
    settings.ALIYUN_ACCESS_KEY_ID = "test-ak"
    settings.ALIYUN_ACCESS_KEY_SECRET = ALIYUN_SECRET
    settings.ALIYUN_SMS_ENDPOINT = f"127.0.0.1:{provider.port}"
    settings.ALIYUN_SMS_PROTOCOL = "http"
    settings.ALIYUN_SMS_SIGN_NAME = "商户门户"
    settings.ALIYUN_SMS_TEMPLATE_CODE = "SMS_123456789"
    settings.SMS_HTTP_TIMEOUT = 2.0
    provider.default = (200, {"Code": "OK", "BizId": "123", "Message": "OK", "RequestId": "x"})
    return provider


def queued(backend: str, phone: str = "13800138000", text: str = TEXT) -> SmsMessage:
    return SmsMessage.objects.create(phone=phone, text=text, purpose="login", backend=backend)


def verify_portal_signature(hit: dict, secret: str = SECRET) -> bool:
    timestamp = hit["headers"]["X-Portal-Timestamp"]
    expected = hmac.new(secret.encode(), timestamp.encode() + b"." + hit["body"], hashlib.sha256).hexdigest()
    return hmac.compare_digest(hit["headers"]["X-Portal-Signature"], f"sha256={expected}")


def verify_acs3_signature(hit: dict, secret: str) -> bool:
    """Alibaba Cloud's ACS3-HMAC-SHA256 (signature V3), recomputed on the server side."""
    scheme, _, params = hit["headers"]["Authorization"].partition(" ")
    fields = dict(part.split("=", 1) for part in params.split(","))
    url = urlsplit(hit["path"])
    query = "&".join(
        f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}"
        for k, v in sorted(parse_qsl(url.query, keep_blank_values=True))
    )
    signed = fields["SignedHeaders"]
    headers = {name.lower(): value for name, value in hit["headers"].items()}
    canonical_headers = "".join(f"{name}:{headers[name].strip()}\n" for name in signed.split(";"))
    canonical = "\n".join(
        [hit["method"], url.path, query, canonical_headers, signed, hashlib.sha256(hit["body"]).hexdigest()]
    )
    to_sign = f"{scheme}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
    expected = hmac.new(secret.encode(), to_sign.encode(), hashlib.sha256).hexdigest()
    return scheme == "ACS3-HMAC-SHA256" and hmac.compare_digest(fields["Signature"], expected)


# --- http backend ----------------------------------------------------------------------------


def test_http_backend_posts_signed_json_with_idempotency_key_and_redacts_text(http_backend, sleeps):
    message = queued("http")

    outcome = delivery.deliver(message.pk)

    assert outcome is delivery.Outcome.SENT
    assert len(http_backend.hits) == 1
    hit = http_backend.hits[0]
    assert hit["path"] == "/sms"
    assert json.loads(hit["body"]) == {
        "phone": "13800138000",
        "text": TEXT,
        "purpose": "login",
        "message_id": message.pk,
    }
    assert hit["headers"]["Content-Type"] == "application/json"
    assert hit["headers"]["Idempotency-Key"] == f"sms-{message.pk}"
    assert verify_portal_signature(hit)
    assert not verify_portal_signature(hit, secret="another-secret")
    assert abs(int(hit["headers"]["X-Portal-Timestamp"]) - time.time()) < 60
    message.refresh_from_db()
    assert message.status == SmsStatus.SENT
    assert message.attempts == 1
    assert message.provider_reference == "prov-42"
    assert message.text == "Your merchant portal code is ******. It expires in * minutes."
    assert message.sent_at is not None
    assert sleeps == []


def test_http_backend_retries_after_500_then_succeeds(http_backend, sleeps):
    http_backend.answers = [(500, {"error": "busy"}), (503, {"error": "busy"})]
    message = queued("http")

    outcome = delivery.deliver(message.pk)

    assert outcome is delivery.Outcome.SENT
    assert len(http_backend.hits) == 3
    assert sleeps == [1.0, 2.0]
    assert {hit["headers"]["Idempotency-Key"] for hit in http_backend.hits} == {f"sms-{message.pk}"}
    assert all(verify_portal_signature(hit) for hit in http_backend.hits)
    message.refresh_from_db()
    assert (message.status, message.attempts, message.error) == (SmsStatus.SENT, 1, "")


def test_http_backend_retries_on_429(http_backend, sleeps):
    http_backend.answers = [(429, {"error": "slow down"})]

    assert delivery.deliver(queued("http").pk) is delivery.Outcome.SENT
    assert len(http_backend.hits) == 2
    assert sleeps == [1.0]


def test_http_400_is_a_terminal_recorded_failure(http_backend, sleeps):
    http_backend.answers = [(400, {"error": "invalid phone"})]
    message = queued("http")

    outcome = delivery.deliver(message.pk)

    assert outcome is delivery.Outcome.FAILED
    assert len(http_backend.hits) == 1
    assert sleeps == []
    message.refresh_from_db()
    assert message.status == SmsStatus.FAILED
    assert message.error == 'Provider refused the message: HTTP 400 {"error": "invalid phone"}'
    assert "482913" not in message.text
    assert message.sent_at is None


def test_http_5xx_every_time_leaves_message_queued_for_the_job_to_retry(http_backend, sleeps):
    http_backend.default = (502, {"error": "bad gateway"})
    message = queued("http")

    outcome = delivery.deliver(message.pk)

    assert outcome is delivery.Outcome.RETRY
    assert len(http_backend.hits) == 4  # one try and SMS_HTTP_RETRIES = 3 retries
    assert sleeps == [1.0, 2.0, 4.0]
    message.refresh_from_db()
    assert (message.status, message.attempts, message.error) == (SmsStatus.QUEUED, 1, "Provider answered HTTP 502.")
    assert message.text == TEXT  # kept for the next try


def test_connection_refused_is_retryable(settings, sleeps):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings.SMS_HTTP_URL = f"http://127.0.0.1:{port}/sms"
    settings.SMS_HTTP_SECRET = SECRET
    settings.SMS_HTTP_RETRIES = 1
    message = queued("http")

    assert delivery.deliver(message.pk) is delivery.Outcome.RETRY
    assert sleeps == [1.0]
    message.refresh_from_db()
    assert message.error == "Provider unreachable: ConnectError."


def test_http_backend_without_configuration_fails_terminally(settings, sleeps):
    settings.SMS_HTTP_URL = ""
    settings.SMS_HTTP_SECRET = ""
    message = queued("http")

    assert delivery.deliver(message.pk) is delivery.Outcome.FAILED
    message.refresh_from_db()
    assert (message.status, message.error) == (SmsStatus.FAILED, "SMS_HTTP_URL and SMS_HTTP_SECRET must both be set.")


# --- the job: idempotent claim, Celery retry, giving up ----------------------------------------


def test_task_run_twice_sends_once(http_backend, sleeps):
    message = queued("http")

    first = send_sms_message.apply(args=(message.pk,)).get()
    second = send_sms_message.apply(args=(message.pk,)).get()

    assert (first, second) == ("sent", "skipped")
    assert len(http_backend.hits) == 1
    message.refresh_from_db()
    assert (message.status, message.attempts) == (SmsStatus.SENT, 1)


def test_duplicate_of_a_job_already_retrying_does_not_send(http_backend, sleeps):
    http_backend.default = (500, {})
    message = queued("http")
    assert delivery.deliver(message.pk, attempt=0) is delivery.Outcome.RETRY
    hits_after_first_job = len(http_backend.hits)

    # A redelivered copy of the first job still expects attempt 0: it must not send.
    assert delivery.deliver(message.pk, attempt=0) is delivery.Outcome.SKIPPED
    assert len(http_backend.hits) == hits_after_first_job


def test_task_schedules_a_celery_retry_with_the_next_attempt(http_backend, sleeps, monkeypatch):
    http_backend.default = (500, {})
    message = queued("http")
    scheduled = {}

    def fake_retry(*, args, kwargs, countdown):
        scheduled.update(args=args, kwargs=kwargs, countdown=countdown)
        return Retry("retry")

    monkeypatch.setattr(send_sms_message, "retry", fake_retry)

    with pytest.raises(Retry):
        send_sms_message.run(message.pk)

    assert scheduled == {"args": (message.pk,), "kwargs": {"attempt": 1}, "countdown": 10}


def test_last_attempt_gives_up_and_records_failure(http_backend, sleeps):
    http_backend.default = (500, {})
    message = queued("http")
    SmsMessage.objects.filter(pk=message.pk).update(attempts=delivery.MAX_ATTEMPTS - 1)

    outcome = delivery.deliver(message.pk, attempt=delivery.MAX_ATTEMPTS - 1)

    assert outcome is delivery.Outcome.FAILED
    message.refresh_from_db()
    assert message.status == SmsStatus.FAILED
    assert message.attempts == delivery.MAX_ATTEMPTS
    assert message.error == "Provider answered HTTP 500. (gave up after 5 attempts)"
    assert "482913" not in message.text


def test_retry_countdown_doubles():
    assert [delivery.retry_countdown(n) for n in (1, 2, 3, 4)] == [10, 20, 40, 80]


def test_unknown_backend_is_a_terminal_failure():
    message = queued("carrier-pigeon")

    assert delivery.deliver(message.pk) is delivery.Outcome.FAILED
    message.refresh_from_db()
    assert message.error == "Unknown SMS backend 'carrier-pigeon': choose outbox, aliyun or http."


# --- aliyun backend (official SDK, pointed at the local server over http) ------------------------


def test_aliyun_sends_signed_sendsms_with_the_code_as_template_param(aliyun_backend):
    message = queued("aliyun")

    outcome = delivery.deliver(message.pk)

    assert outcome is delivery.Outcome.SENT
    assert len(aliyun_backend.hits) == 1
    hit = aliyun_backend.hits[0]
    assert hit["method"] == "POST"
    assert hit["headers"]["x-acs-action"] == "SendSms"
    assert hit["headers"]["x-acs-version"] == "2017-05-25"
    assert dict(parse_qsl(urlsplit(hit["path"]).query)) == {
        "PhoneNumbers": "13800138000",
        "SignName": "商户门户",
        "TemplateCode": "SMS_123456789",
        "TemplateParam": '{"code": "482913"}',
        "OutId": f"sms-{message.pk}",
    }
    assert "Credential=test-ak," in hit["headers"]["Authorization"]
    assert verify_acs3_signature(hit, ALIYUN_SECRET)
    assert not verify_acs3_signature(hit, "wrong-secret")
    message.refresh_from_db()
    assert (message.status, message.provider_reference) == (SmsStatus.SENT, "123")
    assert message.text == "Your merchant portal code is ******. It expires in * minutes."


def test_aliyun_business_error_is_a_terminal_failure(aliyun_backend):
    aliyun_backend.answers = [
        (200, {"Code": "isv.BUSINESS_LIMIT_CONTROL", "Message": "触发天级流控Permits:10", "RequestId": "x"})
    ]
    message = queued("aliyun")

    outcome = delivery.deliver(message.pk)

    assert outcome is delivery.Outcome.FAILED
    assert len(aliyun_backend.hits) == 1
    message.refresh_from_db()
    assert message.status == SmsStatus.FAILED
    assert message.error == "Aliyun isv.BUSINESS_LIMIT_CONTROL: 触发天级流控Permits:10"
    assert "482913" not in message.text


def test_aliyun_server_error_is_retryable(aliyun_backend):
    aliyun_backend.answers = [(503, {"Code": "ServiceUnavailable", "Message": "busy", "RequestId": "y"})]
    message = queued("aliyun")

    assert delivery.deliver(message.pk) is delivery.Outcome.RETRY
    message.refresh_from_db()
    assert message.status == SmsStatus.QUEUED
    assert message.error.startswith("Aliyun HTTP 503 ServiceUnavailable")


def test_aliyun_http_400_is_terminal(aliyun_backend):
    aliyun_backend.answers = [
        (400, {"Code": "InvalidAccessKeyId.NotFound", "Message": "no such key", "RequestId": "y"})
    ]
    message = queued("aliyun")

    assert delivery.deliver(message.pk) is delivery.Outcome.FAILED
    message.refresh_from_db()
    assert message.error.startswith("Aliyun HTTP 400 InvalidAccessKeyId.NotFound")


def test_aliyun_unreachable_is_retryable(aliyun_backend, settings):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings.ALIYUN_SMS_ENDPOINT = f"127.0.0.1:{port}"
    message = queued("aliyun")

    assert delivery.deliver(message.pk) is delivery.Outcome.RETRY
    message.refresh_from_db()
    assert message.error.startswith("Aliyun unreachable")


def test_aliyun_text_without_a_code_fails_without_calling(aliyun_backend):
    message = queued("aliyun", text="Welcome to the merchant portal.")

    assert delivery.deliver(message.pk) is delivery.Outcome.FAILED
    assert aliyun_backend.hits == []
    message.refresh_from_db()
    assert message.error == "The text holds no six-digit code for the provider's template."


def test_aliyun_missing_configuration_fails_without_calling(aliyun_backend, settings):
    settings.ALIYUN_SMS_TEMPLATE_CODE = ""
    message = queued("aliyun")

    assert delivery.deliver(message.pk) is delivery.Outcome.FAILED
    assert aliyun_backend.hits == []
    message.refresh_from_db()
    assert message.error == "Aliyun SMS is not configured: ALIYUN_SMS_TEMPLATE_CODE."


# --- helpers: what is kept and what is sent ------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Your code is 482913, valid for 5 minutes.", "Your code is ******, valid for * minutes."),
        ("【商户门户】您的验证码是482913，5分钟内有效。", "【商户门户】您的验证码是******，*分钟内有效。"),
        (
            "User a.admin, temporary password Xk7pQ2mZa9Lw. Change it.",
            "User a.admin, temporary password ************. Change it.",
        ),
    ],
)
def test_redact_text_stars_out_every_word_holding_a_digit(text, expected):
    assert delivery.redact_text(text) == expected


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("Your portal sign-in code is 482913, valid for 5 minutes.", "482913"),
        ("【商户门户】您的验证码是482913，5分钟内有效。", "482913"),
    ],
)
def test_extract_code_finds_the_six_digit_word(text, code):
    assert backends.extract_code(text) == code


@pytest.mark.parametrize("text", ["Temporary password ab123456cd.", "Call 13800138000.", "Code 12345."])
def test_extract_code_refuses_digits_inside_a_longer_word(text):
    with pytest.raises(backends.SmsTerminalError):
        backends.extract_code(text)


def test_unexpected_backend_error_is_retried_then_recorded(monkeypatch):
    def broken(self, **kwargs):
        raise ValueError("boom")

    monkeypatch.setattr(backends.OutboxBackend, "send", broken)
    message = queued("outbox")

    assert delivery.deliver(message.pk) is delivery.Outcome.RETRY
    message.refresh_from_db()
    assert (message.status, message.error) == (SmsStatus.QUEUED, "Unexpected error: ValueError.")


def test_the_sdk_loggers_keep_no_unfiltered_handlers_of_their_own(aliyun_backend):
    """Importing the SDK gives three loggers handlers of their own; sending drops them and lets the records
    reach the project's filtered handlers, WARNING and above (security C4)."""
    import logging

    from portal.accounts.sms.backends import SDK_LOGGERS

    assert delivery.deliver(queued("aliyun").pk) is delivery.Outcome.SENT
    for name in SDK_LOGGERS:
        sdk_logger = logging.getLogger(name)
        assert sdk_logger.handlers == [] and sdk_logger.propagate and sdk_logger.level == logging.WARNING
