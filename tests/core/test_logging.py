"""The log filter masks Luhn-valid card numbers and the values of secret-looking keys; every
configured handler applies it; nothing secret reaches a log line across the sign-in, password
and upload journeys (security.md C4)."""

import logging
import os
import re
import subprocess
import sys
import textwrap
import time

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from hypothesis import assume, given
from hypothesis import strategies as st

from portal.batches.models import Batch
from portal.core.logging import RedactSecretsFilter, redact
from tests.accounts.auth_helpers import HOME_URL, LOGIN_URL, VERIFY_URL, last_code
from tests.factories import PASSWORD


def _luhn_complete(body: str) -> str:
    """``body`` plus the check digit that makes it Luhn-valid."""
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return body + str((10 - total % 10) % 10)


pans = st.integers(min_value=13, max_value=19).flatmap(
    lambda n: st.text(alphabet="0123456789", min_size=n - 1, max_size=n - 1).map(_luhn_complete)
)
separators = st.sampled_from([" ", ":", "=", "|", "卡号", ",", "\n", "("])
# No digits (they would lengthen the run) and no letters that could spell a secret key name.
words = st.text(alphabet="商户交易退款 abcxyzABCXYZ.-_/", max_size=20)


@given(pan=pans, before=words, after=words, sep=separators)
def test_a_luhn_valid_pan_never_survives(pan, before, after, sep):
    line = f"{before}{sep}{pan}{sep}{after}"
    cleaned = redact(line)
    assert pan not in cleaned
    # BIN and last four stay for support; the middle is masked
    assert pan[:6] + "*" * (len(pan) - 10) + pan[-4:] in cleaned


@given(
    key=st.sampled_from(["password", "PASSWORD", "secret", "otp_token", "token", "signature", "passwd"]),
    sep=st.sampled_from(["=", ": ", "='", '": "']),
    value=st.text(
        alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_+/", min_size=6, max_size=40
    ),
)
def test_secret_values_are_blanked(key, sep, value):
    # A value found elsewhere in the line ("passwo" in "password") cannot tell whether it was blanked.
    assume(value not in f"login attempt {key}{sep} from 10.0.0.1")
    line = f"login attempt {key}{sep}{value} from 10.0.0.1"
    cleaned = redact(line)
    assert value not in cleaned
    assert "[redacted]" in cleaned
    assert cleaned.endswith(" from 10.0.0.1")


def test_the_filter_rewrites_the_record_including_its_arguments():
    # given a record whose card number arrives through the %-arguments
    record = logging.LogRecord(
        "portal", logging.INFO, __file__, 1, "card %s password=%s", ("6222021234567890128", "hunter2hunter2"), None
    )
    # when the filter runs
    kept = RedactSecretsFilter().filter(record)
    # then the record is kept, rendered and masked
    assert kept is True
    assert record.getMessage() == "card 622202*********0128 password=[redacted]"


def test_ordinary_numbers_are_left_alone():
    line = "order 20260101 amount 12345 fen on 2026-01-01 12:00:00, phone 13800000001"
    assert redact(line) == line


# --- card numbers written in groups ------------------------------------------------------------


def _grouped(pan: str, sizes: list[int], seps: list[str]) -> str:
    """``pan`` cut into groups of ``sizes`` (the rest in a last group) joined by ``seps``."""
    groups, start = [], 0
    for size in sizes:
        if start + size >= len(pan):
            break
        groups.append(pan[start : start + size])
        start += size
    groups.append(pan[start:])
    return "".join(g + (seps[i] if i < len(groups) - 1 else "") for i, g in enumerate(groups))


group_sizes = st.one_of(
    st.just([4, 4, 4, 4, 4]),  # 4-4-4-4(-3)
    st.just([4, 6]),  # 4-6-5 (American Express), 4-6-4 (Diners)
    st.just([6]),  # 622202 1234567890128
    st.lists(st.integers(min_value=3, max_value=8), min_size=1, max_size=6),
)
grouped_pans = st.tuples(pans, group_sizes, st.lists(st.sampled_from([" ", "-"]), min_size=6, max_size=6)).map(
    lambda t: (t[0], _grouped(*t))
)


@given(card=grouped_pans, before=words, after=words, sep=separators)
def test_a_luhn_valid_pan_in_groups_never_survives(card, before, after, sep):
    pan, written = card
    line = f"{before}{sep}{written}{sep}{after}"
    cleaned = redact(line)
    assert written not in cleaned
    assert pan not in cleaned.replace(" ", "").replace("-", "")
    # the same masked form as a card number written in one piece
    assert pan[:6] + "*" * (len(pan) - 10) + pan[-4:] in cleaned


@given(card=grouped_pans, date=st.dates().map(str), tail=st.integers(min_value=0, max_value=9999).map(str))
def test_a_pan_in_groups_among_other_numbers_never_survives(card, date, tail):
    # a date before it and a number after it, joined by the same separators (when the number makes a
    # longer Luhn-valid run with the card's digits, the whole run is masked)
    pan, written = card
    cleaned = redact(f"paid {date} {written} {tail}")
    assert pan not in cleaned.replace(" ", "").replace("-", "")
    assert f" {pan[:6]}" + "*" * (len(pan) - 10) in cleaned


@pytest.mark.parametrize(
    "line",
    [
        "SMS outbox → +86 13800138000: Your code is 482913.",
        "settlement 2026-01-01 2026-01-31 merchant 898310012345678 terminal 12345678",
        "batch 12 lines 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20",
        "at 2026-01-01 12:00:00 took 1234 ms",
    ],
)
def test_dates_phones_and_short_groups_are_not_card_numbers(line):
    assert redact(line) == line


def test_cards_in_groups_examples():
    assert redact("card 6222 0212 3456 7890 128 ok") == "card 622202*********0128 ok"
    assert redact("card 4111-1111-1111-1111, again 4111 1111 1111 1111.") == (
        "card 411111******1111, again 411111******1111."
    )
    assert redact("amex 3782 822463 10005") == "amex 378282*****0005"


# --- sessions, cookies, headers, CSRF tokens ----------------------------------------------------


@pytest.mark.parametrize(
    "line,expected",
    [
        ("Cookie: sessionid=k3y; csrftoken=Tok3n; portal_language=en", "Cookie: [redacted]"),
        ("Set-Cookie: sessionid=k3y; expires=Thu, 01 Jan 2026; HttpOnly", "Set-Cookie: [redacted]"),
        ("Authorization: Bearer abc.def", "Authorization: [redacted]"),
        (
            "{'HTTP_COOKIE': 'sessionid=k3y; csrftoken=Tok3n', 'HTTP_HOST': 'x'}",
            "{'HTTP_COOKIE': '[redacted]', 'HTTP_HOST': 'x'}",
        ),
        (
            '{"Authorization": "Basic dXNlcjpwdw==", "Accept": "*/*"}',
            '{"Authorization": "[redacted]", "Accept": "*/*"}',
        ),
        ("resumed sessionid=k3y for a.admin", "resumed sessionid=[redacted] for a.admin"),
        ("__Host-sessionid=k3y; __Host-csrftoken=Tok3n", "__Host-sessionid=[redacted]; __Host-csrftoken=[redacted]"),
        ("{'session_key': 'k3y', 'csrftoken': 'Tok3n'}", "{'session_key': '[redacted]', 'csrftoken': '[redacted]'}"),
        ("X-CSRFToken: Tok3n from 10.0.0.1", "X-CSRFToken: [redacted] from 10.0.0.1"),
        (
            "csrfmiddlewaretoken=Tok3n&current_password=Old-pw-1&new_password1=New-pw-1&new_password2=New-pw-1",
            "csrfmiddlewaretoken=[redacted]&current_password=[redacted]"
            "&new_password1=[redacted]&new_password2=[redacted]",
        ),
        ("{'otp_token': '482913', 'method': 'sms'}", "{'otp_token': '[redacted]', 'method': 'sms'}"),
        ("user=a.admin&method=sms&next=/", "user=a.admin&method=sms&next=/"),
        ("Forbidden (CSRF token missing.): /accounts/login/", "Forbidden (CSRF token missing.): /accounts/login/"),
    ],
)
def test_session_ids_cookies_headers_and_csrf_tokens_are_blanked(line, expected):
    assert redact(line) == expected


def test_a_logged_traceback_is_redacted_too():
    try:
        raise ValueError("card 6222021234567890128 refused, password=hunter2hunter2")
    except ValueError:
        record = logging.LogRecord("portal", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    RedactSecretsFilter().filter(record)
    text = logging.Formatter().format(record)
    assert "6222021234567890128" not in text and "hunter2hunter2" not in text
    assert "card 622202*********0128 refused, password=[redacted]" in text


def test_a_long_line_is_handled_in_linear_time():
    # the filter sees every line: a pathological one must not stall logging
    start = time.perf_counter()
    redact("token" * 50_000 + "=x " + "a" * 500_000 + " 1" * 100_000 + " 4111" * 50_000)
    assert time.perf_counter() - start < 5


# --- every handler applies the filter ---------------------------------------------------------


def _is_pytest_handler(handler: logging.Handler) -> bool:
    return type(handler).__module__ == "_pytest.logging"


def _live_handlers() -> list[logging.Handler]:
    """Every handler attached to any logger now, but pytest's own capture handlers and NullHandlers."""
    loggers = [logging.getLogger()] + [
        lg for name, lg in logging.Logger.manager.loggerDict.items() if isinstance(lg, logging.Logger)
    ]
    found: dict[int, logging.Handler] = {}
    for lg in loggers:
        for h in lg.handlers:
            if not _is_pytest_handler(h) and not isinstance(h, logging.NullHandler):
                found[id(h)] = h
    return list(found.values())


def _redacts(handler: logging.Handler) -> bool:
    return any(isinstance(f, RedactSecretsFilter) for f in handler.filters)


def test_every_configured_handler_redacts(settings):
    assert settings.LOGGING["filters"]["redact"] == {"()": "portal.core.logging.RedactSecretsFilter"}
    assert {name: h["filters"] for name, h in settings.LOGGING["handlers"].items()} == {
        "console": ["redact"],
        "django.server": ["redact"],
    }
    # and no unfiltered handler anywhere, none left over from Django's defaults (mail_admins, the
    # DEBUG-only console, runserver's request lines) in particular
    handlers = _live_handlers()
    assert handlers
    assert [h for h in handlers if not _redacts(h)] == []


def test_the_celery_worker_keeps_the_filtered_handlers():
    # Celery's worker sets logging up after Django; in a process of its own, as the worker would.
    script = textwrap.dedent(
        """
        import logging, django
        django.setup()
        from portal.celery import app
        from portal.core.logging import RedactSecretsFilter
        app.log.setup_logging_subsystem(loglevel="INFO")
        loggers = [logging.getLogger()]
        loggers += [lg for lg in logging.Logger.manager.loggerDict.values() if isinstance(lg, logging.Logger)]
        handlers = [h for lg in loggers for h in lg.handlers if not isinstance(h, logging.NullHandler)]
        bad = [h for h in handlers if not any(isinstance(f, RedactSecretsFilter) for f in h.filters)]
        print(len(handlers), len(bad))
        """
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "portal.settings"}
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    handlers, unfiltered = map(int, result.stdout.split())
    assert handlers >= 1 and unfiltered == 0


# --- end to end: sign-in, code, password change, batch upload -------------------------------------

careless = logging.getLogger("tests.careless")


def careless_request_logging(get_response):
    """Middleware standing in for the debug line someone will one day add: it logs each request's
    cookies, headers, form fields and uploaded files, and the cookies of each response, raw."""

    def middleware(request):
        careless.warning("%s %s Cookie: %s", request.method, request.path, request.headers.get("Cookie", ""))
        careless.warning("META %s", {k: v for k, v in request.META.items() if k.startswith("HTTP_")})
        careless.warning("COOKIES %s", request.COOKIES)
        if request.method == "POST":
            careless.warning("POST %s", request.POST.dict())
            careless.warning("body %s", request.POST.urlencode())
            for name, upload in request.FILES.items():
                careless.warning("upload %s %s: %s", name, upload.name, upload.read().decode("utf-8", "replace"))
                upload.seek(0)
        response = get_response(request)
        careless.warning("response %s", response.cookies.output())
        return response

    return middleware


class _RawRecords(logging.Handler):
    """Keeps a copy of each record as logged, before any handler's filter has rewritten it."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record):
        self.records.append(logging.makeLogRecord(dict(record.__dict__)))


@pytest.fixture
def raw_records(caplog):
    caplog.set_level(logging.DEBUG)
    handler = _RawRecords()
    root = logging.getLogger()
    root.handlers.insert(0, handler)  # first: the configured handlers' filters run on the same record after it
    yield handler.records
    root.removeHandler(handler)


def _emitted(record: logging.LogRecord) -> list[str]:
    """What each configured handler the record reaches (its logger's and the parents', as far as it
    propagates) would write for it: through the handler's own filters and formatter."""
    lines = []
    logger = logging.getLogger(record.name)
    while logger is not None:
        for handler in logger.handlers:
            if _is_pytest_handler(handler) or isinstance(handler, logging.NullHandler | _RawRecords):
                continue
            copy = logging.makeLogRecord(dict(record.__dict__))
            if copy.levelno >= handler.level and handler.filter(copy):
                lines.append(handler.format(copy))
        logger = logger.parent if logger.propagate else None
    return lines


def _form_token(response) -> str:
    return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', response.content.decode()).group(1)


@pytest.mark.django_db
def test_no_password_code_session_csrf_token_or_card_reaches_a_log_line(
    operator_a, settings, tmp_path, raw_records, caplog, django_capture_on_commit_callbacks
):
    settings.MIDDLEWARE = ["tests.core.test_logging.careless_request_logging", *settings.MIDDLEWARE]
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.CELERY_TASK_ALWAYS_EAGER = True
    client = Client(enforce_csrf_checks=True)
    new_password = "Fresh-pass-2026x"
    pan = "6222021234567890128"
    written_pan = "6222 0212 3456 7890 128"
    secrets: set[str] = {PASSWORD, new_password, pan, written_pan}

    def remember_cookies():
        for name in ("sessionid", "csrftoken"):
            if name in client.cookies and client.cookies[name].value:
                secrets.add(client.cookies[name].value)

    def post(url, data, **extra):
        page = client.get(url)
        token = _form_token(page)
        secrets.add(token)
        remember_cookies()
        response = client.post(url, {"csrfmiddlewaretoken": token, **data}, **extra)
        remember_cookies()
        return response

    # password sign-in, then the SMS code
    response = post(LOGIN_URL, {"username": operator_a.username, "password": PASSWORD})
    assert response.status_code == 302 and response["Location"] == VERIFY_URL
    code = last_code(operator_a.phone)
    secrets.add(code)
    response = post(VERIFY_URL, {"otp_token": code, "method": "sms"})
    assert response.status_code == 302 and response["Location"] == HOME_URL
    assert client.get(HOME_URL).status_code == 200

    # password change
    response = post(
        reverse("accounts:password_change"),
        {"current_password": PASSWORD, "new_password1": new_password, "new_password2": new_password},
    )
    assert response.status_code == 302 and response["Location"] == HOME_URL

    # a batch refund file with a card number in a free-text column
    lines = ["5.0.0|100|1||", "orderId|txnAmt|origQryId|reason", f"RFLOG0000001|100|20260101000000000001|{written_pan}"]
    upload = SimpleUploadedFile("refunds.txt", ("\r\n".join(lines) + "\r\n").encode(), content_type="text/plain")
    with django_capture_on_commit_callbacks(execute=True):
        response = post(reverse("batches:upload", args=["refund"]), {"file": upload})
    batch = Batch.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("batches:detail", args=[batch.pk])
    assert batch.uploaded_by_id == operator_a.pk

    # the journey logged every kind of secret, raw (so this test would see a leak)...
    raw = "\n".join(r.getMessage() for r in raw_records if r.name == careless.name)
    assert {PASSWORD, new_password, code, written_pan} <= {s for s in secrets if s in raw}
    assert len([s for s in secrets if s in raw]) >= 8  # the passwords, the code, the card, sessions, tokens
    # ...and nothing the configured handlers write, nor anything pytest captured, holds one
    emitted = [line for record in raw_records for line in _emitted(record)]
    assert len(emitted) >= len(raw_records) > 0
    leaks = sorted({s for s in secrets for line in emitted if s in line})
    assert leaks == []
    assert sorted({s for s in secrets if s in caplog.text}) == []
    assert not any(s in r.getMessage() for r in caplog.records for s in secrets)
