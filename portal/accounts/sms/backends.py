"""SMS backends: the outbox (embedded default), Alibaba Cloud SMS and a generic HTTP provider.

A backend sends one message and answers with an ``SmsResult``, or raises
``SmsRetryableError`` (an infrastructure fault: connection error, timeout, HTTP 5xx or 429; the
job tries again later) or ``SmsTerminalError`` (bad configuration or a rejected message: recorded
as a failure, never retried). Backends never touch the database; ``delivery.py`` does.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import time
from dataclasses import dataclass

import httpx
from django.conf import settings

log = logging.getLogger("portal.sms")

# A code is a six-digit word of its own, never six digits inside a longer word (a password).
_CODE = re.compile(r"(?<![0-9A-Za-z])[0-9]{6}(?![0-9A-Za-z])")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_LONG_DIGITS = re.compile(r"\d{13,}")


class SmsDeliveryError(Exception):
    """A message could not be handed to the provider."""


class SmsRetryableError(SmsDeliveryError):
    """An infrastructure fault: try again later."""


class SmsTerminalError(SmsDeliveryError):
    """Bad configuration or a message the provider refuses: do not try again."""


@dataclass(frozen=True)
class SmsResult:
    provider_reference: str = ""


def one_line(value: str) -> str:
    """Control characters (newlines included) become spaces, so a message is one log line."""
    return _CONTROL.sub(" ", value)


def extract_code(text: str) -> str:
    """The six-digit code in an SMS text, for providers that send pre-approved templates."""
    match = _CODE.search(text)
    if match is None:
        raise SmsTerminalError("The text holds no six-digit code for the provider's template.")
    return match.group(0)


def _sleep(seconds: float) -> None:
    # A module-level seam so tests can record the backoff instead of waiting for it.
    time.sleep(seconds)


class SmsBackend:
    """Base class. ``keeps_text`` says whether the stored text may keep the code once delivered."""

    name = ""
    keeps_text = False

    def send(self, *, message_id: int, phone: str, text: str, purpose: str) -> SmsResult:
        raise NotImplementedError


class OutboxBackend(SmsBackend):
    """Embedded default: nothing leaves the machine. The message is logged at WARNING on
    ``portal.sms`` (so the run command's log shows the code) and stays readable in the outbox
    page and the ``sms_outbox`` command."""

    name = "outbox"
    keeps_text = True

    def send(self, *, message_id: int, phone: str, text: str, purpose: str) -> SmsResult:
        log.warning("SMS outbox → %s: %s", outbox_phone(phone), one_line(text))
        return SmsResult()


def outbox_phone(phone: str) -> str:
    """The phone as written in the outbox log line.

    The log filter (``portal.core.logging``) masks 13–19 digit runs as card numbers; an
    international number such as ``+8613800138000`` is one. Split such a run before its last
    eleven digits (``+86 13800138000``) so the line reaches the log intact.
    """
    return _LONG_DIGITS.sub(lambda m: m.group(0)[:-11] + " " + m.group(0)[-11:], one_line(phone))


class HttpBackend(SmsBackend):
    """A JSON POST to ``SMS_HTTP_URL``, signed with HMAC-SHA256 over ``"<timestamp>.<raw body>"``.

    Headers: ``X-Portal-Timestamp`` (unix seconds), ``X-Portal-Signature: sha256=<hex>``,
    ``Idempotency-Key: sms-<message id>`` (the provider drops a duplicate). Connection errors,
    timeouts, HTTP 5xx and 429 are retried ``SMS_HTTP_RETRIES`` times after 1, 2, 4… seconds;
    any other non-2xx answer is terminal. The provider's message id is read from ``{"id": ...}``.
    """

    name = "http"
    backoff_seconds = 1.0

    def __init__(self, *, url: str, secret: str, timeout: float, retries: int) -> None:
        self.url = url
        self.secret = secret
        self.timeout = timeout
        self.retries = max(retries, 0)

    @classmethod
    def from_settings(cls) -> HttpBackend:
        return cls(
            url=settings.SMS_HTTP_URL,
            secret=settings.SMS_HTTP_SECRET,
            timeout=settings.SMS_HTTP_TIMEOUT,
            retries=settings.SMS_HTTP_RETRIES,
        )

    def sign(self, timestamp: str, body: bytes) -> str:
        digest = hmac.new(self.secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
        return f"sha256={digest}"

    def send(self, *, message_id: int, phone: str, text: str, purpose: str) -> SmsResult:
        if not self.url or not self.secret:
            raise SmsTerminalError("SMS_HTTP_URL and SMS_HTTP_SECRET must both be set.")
        payload = {"phone": phone, "text": text, "purpose": purpose, "message_id": message_id}
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
        error = ""
        with httpx.Client(timeout=self.timeout) as client:
            for attempt in range(self.retries + 1):
                if attempt:
                    _sleep(self.backoff_seconds * 2 ** (attempt - 1))
                timestamp = str(int(time.time()))
                headers = {
                    "Content-Type": "application/json",
                    "X-Portal-Timestamp": timestamp,
                    "X-Portal-Signature": self.sign(timestamp, body),
                    "Idempotency-Key": f"sms-{message_id}",
                }
                try:
                    response = client.post(self.url, content=body, headers=headers)
                except httpx.TransportError as exc:
                    error = f"Provider unreachable: {type(exc).__name__}."
                    continue
                if response.status_code == 429 or response.status_code >= 500:
                    error = f"Provider answered HTTP {response.status_code}."
                    continue
                if not response.is_success:
                    raise SmsTerminalError(
                        f"Provider refused the message: HTTP {response.status_code} {one_line(response.text)[:120]}"
                    )
                return SmsResult(provider_reference=_reference(response))
        raise SmsRetryableError(error)


def _reference(response: httpx.Response) -> str:
    try:
        answer = response.json()
    except ValueError:
        return ""
    if isinstance(answer, dict) and answer.get("id") is not None:
        return str(answer["id"])[:128]
    return ""


# Loggers the Aliyun SDK gives handlers of its own (some at DEBUG) when it is imported, after LOGGING was applied:
# their records would bypass the redaction filter of the configured handlers (security C4).
SDK_LOGGERS = ("alibabacloud-tea", "darabonba-core", "credentials")


def _tame_sdk_loggers() -> None:
    """Drop the SDK's own handlers and let its records (WARNING and above) reach the filtered root handlers."""
    for name in SDK_LOGGERS:
        sdk_logger = logging.getLogger(name)
        for handler in list(sdk_logger.handlers):
            sdk_logger.removeHandler(handler)
        sdk_logger.setLevel(logging.WARNING)
        sdk_logger.propagate = True


class AliyunBackend(SmsBackend):
    """Alibaba Cloud SMS (dysmsapi 2017-05-25, ``SendSms``) through the official SDK.

    Aliyun sends only pre-approved templates: ``ALIYUN_SMS_TEMPLATE_CODE`` must name a template
    with a ``${code}`` variable, signed ``ALIYUN_SMS_SIGN_NAME``. Our stored text is a full
    sentence; the six-digit code is taken from it for ``TemplateParam={"code": "..."}``, so the
    approved template's wording, not our text, is what the phone shows. A text without a code of
    its own (the initial-password SMS) cannot go through a code template: terminal failure.

    Answer ``Code == "OK"`` → sent (``BizId`` is the provider reference). ``isp.*`` codes (Aliyun's
    own system errors), HTTP 5xx / 429 and network errors → retry. Anything else → terminal.
    ``SMS_HTTP_TIMEOUT`` bounds the SDK's connect and read times too.
    """

    name = "aliyun"
    _required = (
        "ALIYUN_ACCESS_KEY_ID",
        "ALIYUN_ACCESS_KEY_SECRET",
        "ALIYUN_SMS_ENDPOINT",
        "ALIYUN_SMS_SIGN_NAME",
        "ALIYUN_SMS_TEMPLATE_CODE",
    )

    def send(self, *, message_id: int, phone: str, text: str, purpose: str) -> SmsResult:
        missing = [name for name in self._required if not getattr(settings, name, "")]
        if missing:
            raise SmsTerminalError(f"Aliyun SMS is not configured: {', '.join(missing)}.")
        code = extract_code(text)

        from alibabacloud_dysmsapi20170525 import models as dysms
        from alibabacloud_dysmsapi20170525.client import Client
        from alibabacloud_tea_openapi.models import Config
        from alibabacloud_tea_util.models import RuntimeOptions
        from Tea.exceptions import TeaException

        _tame_sdk_loggers()
        timeout_ms = int(settings.SMS_HTTP_TIMEOUT * 1000)
        config = Config(
            access_key_id=settings.ALIYUN_ACCESS_KEY_ID,
            access_key_secret=settings.ALIYUN_ACCESS_KEY_SECRET,
            endpoint=settings.ALIYUN_SMS_ENDPOINT,
            protocol=settings.ALIYUN_SMS_PROTOCOL,
        )
        request = dysms.SendSmsRequest(
            phone_numbers=phone,
            sign_name=settings.ALIYUN_SMS_SIGN_NAME,
            template_code=settings.ALIYUN_SMS_TEMPLATE_CODE,
            template_param=json.dumps({"code": code}),
            out_id=f"sms-{message_id}",
        )
        runtime = RuntimeOptions(connect_timeout=timeout_ms, read_timeout=timeout_ms, autoretry=False)
        try:
            response = Client(config).send_sms_with_options(request, runtime)
        except TeaException as exc:
            raise _classify_aliyun_exception(exc) from exc
        except (OSError, httpx.TransportError) as exc:
            raise SmsRetryableError(f"Aliyun unreachable: {type(exc).__name__}.") from exc
        body = response.body
        if body is not None and body.code == "OK":
            return SmsResult(provider_reference=str(body.biz_id or "")[:128])
        answer_code = getattr(body, "code", None) or "?"
        error = f"Aliyun {answer_code}: {one_line(str(getattr(body, 'message', '') or ''))[:160]}"
        if answer_code.startswith("isp."):
            raise SmsRetryableError(error)
        raise SmsTerminalError(error)


def _classify_aliyun_exception(exc: Exception) -> SmsDeliveryError:
    """An SDK exception with an HTTP status is the provider's answer; without one it is the network."""
    data = getattr(exc, "data", None) or {}
    status = getattr(exc, "status_code", None) or (data.get("statusCode") if isinstance(data, dict) else None)
    code = getattr(exc, "code", None) or "?"
    detail = one_line(str(getattr(exc, "message", "") or ""))[:160]
    if status is None:
        return SmsRetryableError(f"Aliyun unreachable: {type(exc).__name__}.")
    error = f"Aliyun HTTP {status} {code}: {detail}"
    if int(status) == 429 or int(status) >= 500 or str(code).startswith("Throttling"):
        return SmsRetryableError(error)
    return SmsTerminalError(error)


BACKENDS = {"outbox": OutboxBackend, "aliyun": AliyunBackend, "http": HttpBackend}


def get_backend(name: str) -> SmsBackend:
    """The backend called ``name`` (``outbox``, ``aliyun`` or ``http``), configured from settings."""
    if name == "http":
        return HttpBackend.from_settings()
    if name in BACKENDS:
        return BACKENDS[name]()
    raise SmsTerminalError(f"Unknown SMS backend {name!r}: choose outbox, aliyun or http.")
