"""The in-portal help (/help/): open to every signed-in user, quoting the configured numbers."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.test import Client, override_settings
from django.urls import reverse
from django.utils.html import escape

from portal.accounts.roles import ROLE_PERMISSIONS, Perm, Role
from portal.audit.models import AuditEvent
from portal.core.help import HELP_PAGES, PERMISSION_LABELS, duration_text, yuan_text
from tests.factories import login_password_only

pytestmark = pytest.mark.django_db

HELP_URL_NAMES = [name for name, _title in HELP_PAGES]
USER_FIXTURES = [
    "admin_a",
    "operator_a",
    "reviewer_a",
    "acquirer_admin",
    "acquirer_reviewer",
    "auditor",
    "platform_admin",
]


def _text(response) -> str:
    """The page's visible text with runs of whitespace collapsed."""
    html = response.content.decode()
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def _testid(response, testid: str) -> str:
    match = re.search(rf'data-testid="{testid}">([^<]*)<', response.content.decode())
    assert match, testid
    return match.group(1).strip()


# --- access ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("user_fixture", USER_FIXTURES)
@pytest.mark.parametrize("url_name", HELP_URL_NAMES + ["payments_help:sandbox"])
def test_every_help_page_opens_for_every_role(request, client_for, user_fixture, url_name):
    # given a user of any role, signed in with both factors
    user = request.getfixturevalue(user_fixture)
    client = client_for(user)

    # when they open the help page
    response = client.get(reverse(url_name))

    # then it is shown
    assert response.status_code == 200
    assert response.templates[0].name.startswith("help/")


def test_user_without_any_role_can_read_help(merchant_a, client_for):
    # given a signed-in user with no role at all
    from tests.factories import UserFactory

    user = UserFactory(organisation=merchant_a, username="a.norole", roles=[])

    # when they open the overview
    response = client_for(user).get(reverse("help:index"))

    # then the help is shown: it describes the portal, it reveals no data
    assert response.status_code == 200


@pytest.mark.parametrize("url_name", HELP_URL_NAMES + ["payments_help:sandbox"])
def test_anonymous_is_sent_to_login(url_name):
    # given nobody signed in
    before = AuditEvent.objects.count()

    # when a help page is requested
    url = reverse(url_name)
    response = Client().get(url)

    # then the login page is asked for, with the way back, and nothing is recorded
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('accounts:login')}?next={url}"
    assert AuditEvent.objects.count() == before


@pytest.mark.parametrize("url_name", HELP_URL_NAMES + ["payments_help:sandbox"])
def test_password_only_is_sent_to_second_factor(operator_a, url_name):
    # given a user past the password step only
    client = Client()
    login_password_only(client, operator_a)
    before = AuditEvent.objects.count()

    # when a help page is requested
    response = client.get(reverse(url_name))

    # then the second-factor page is asked for, and nothing is recorded
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:verify"))
    assert AuditEvent.objects.count() == before


@pytest.mark.parametrize("url_name", HELP_URL_NAMES)
def test_help_pages_are_read_only(client_for, operator_a, url_name):
    # given a signed-in user
    client = client_for(operator_a)

    # when they POST to a help page
    response = client.post(reverse(url_name))

    # then the method is not allowed
    assert response.status_code == 405


def test_help_link_is_in_the_navigation_for_everyone(client_for, admin_a):
    # given a merchant administrator (no transaction permission)
    response = client_for(admin_a).get(reverse("core:home"))

    # then the menu links to the help
    assert f'href="{reverse("help:index")}" data-nav="help"' in response.content.decode()


def test_help_menu_is_current_on_a_help_page(client_for, admin_a):
    response = client_for(admin_a).get(reverse("help:security"))

    html = response.content.decode()
    assert re.search(r'class="nav-link active" aria-current="page"\s+href="/help/" data-nav="help"', html)


# --- overview: the role matrix -----------------------------------------------------------------------


def test_every_permission_has_a_label():
    # given every permission the portal checks
    perms = {value for name, value in vars(Perm).items() if name.isupper()}

    # then the help has a human label for each, and none for a permission that does not exist
    assert set(PERMISSION_LABELS) == perms


def test_role_matrix_lists_every_role_and_permission(client_for, operator_a):
    # when the overview is opened
    response = client_for(operator_a).get(reverse("help:index"))
    html = response.content.decode()

    # then each role is a column, in the order of Role, with its label
    columns = re.findall(r'data-role="([a-z_]+)">\s*([^<]+?)\s*<', html)
    assert [role for role, _label in columns] == list(Role.values)
    assert [label for _role, label in columns] == [str(role.label) for role in Role]
    # and each permission is a row with its label
    assert re.findall(r'<tr data-perm="([a-z.]+)">', html) == list(PERMISSION_LABELS)
    for perm, label in PERMISSION_LABELS.items():
        assert f'<tr data-perm="{perm}">\n          <th scope="row" class="fw-normal">{escape(label)}</th>' in html


def test_role_matrix_cells_follow_role_permissions(client_for, operator_a):
    response = client_for(operator_a).get(reverse("help:index"))
    html = response.content.decode()
    roles = list(Role.values)

    for perm in PERMISSION_LABELS:
        row = re.search(rf'<tr data-perm="{re.escape(perm)}">(.*?)</tr>', html, re.S).group(1)
        cells = re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)
        granted = ["✓" in cell for cell in cells]
        assert granted == [perm in ROLE_PERMISSIONS[role] for role in roles], perm


def test_role_matrix_marks_the_users_own_role(client_for, reviewer_a):
    response = client_for(reviewer_a).get(reverse("help:index"))
    html = response.content.decode()

    marked = re.findall(r'data-role="([a-z_]+)">[^<]*<br><span class="badge', html)
    assert marked == [Role.MERCHANT_REVIEWER.value]


def test_role_matrix_is_translated(client_for, operator_a):
    # given the Chinese interface
    client = client_for(operator_a)
    client.cookies["portal_language"] = "zh-hans"

    # when the overview is opened
    response = client.get(reverse("help:index"))

    # then the role labels are the Chinese ones (translated labels, not the role codes)
    assert response["Content-Language"] == "zh-hans"
    assert re.search(r'data-role="merchant_admin">\s*商户管理员\s*<', response.content.decode())


# --- security: the configured numbers ----------------------------------------------------------------


def test_security_page_shows_the_default_numbers(client_for, operator_a):
    response = client_for(operator_a).get(reverse("help:security"))

    assert _testid(response, "password-min-length") == "12"
    assert _testid(response, "password-history") == "4"
    assert _testid(response, "sms-validity") == "5 minutes"
    assert _testid(response, "sms-cooldown") == "1 minute"
    assert _testid(response, "sms-daily-cap") == "20"
    assert _testid(response, "failure-limit") == "10"
    assert _testid(response, "lockout-duration") == "30 minutes"
    assert _testid(response, "session-idle") == "15 minutes"
    assert _testid(response, "session-absolute") == "12 hours"
    assert _testid(response, "step-up-age") == "5 minutes"
    text = _text(response)
    assert "After 10 failed attempts" in text
    assert "locked for 30 minutes" in text
    assert "signed out after 15 minutes without activity, and in any case 12 hours after you signed in" in text
    assert "The code is valid for 5 minutes" in text


@override_settings(
    AXES_FAILURE_LIMIT=5,
    AXES_COOLOFF_TIME=timedelta(hours=2),
    SESSION_IDLE_SECONDS=600,
    SESSION_ABSOLUTE_SECONDS=8 * 3600,
    STEP_UP_MAX_AGE_SECONDS=120,
    SMS_DAILY_CAP=7,
    OTP_SMS_TOKEN_VALIDITY=180,
    OTP_SMS_COOLDOWN_DURATION=90,
)
def test_security_page_follows_the_settings(client_for, operator_a):
    # given other values configured (the login itself is forced, so the limits do not interfere)
    response = client_for(operator_a).get(reverse("help:security"))

    # then the page quotes them, not the defaults
    assert _testid(response, "failure-limit") == "5"
    assert _testid(response, "lockout-duration") == "2 hours"
    assert _testid(response, "session-idle") == "10 minutes"
    assert _testid(response, "session-absolute") == "8 hours"
    assert _testid(response, "step-up-age") == "2 minutes"
    assert _testid(response, "sms-daily-cap") == "7"
    assert _testid(response, "sms-validity") == "3 minutes"
    assert _testid(response, "sms-cooldown") == "90 seconds"
    text = _text(response)
    assert "After 5 failed attempts" in text
    assert "locked for 2 hours" in text
    assert "At most 7 codes" in text
    assert "within the last 2 minutes" in text


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [
        (1, "1 second"),
        (59, "59 seconds"),
        (60, "1 minute"),
        (900, "15 minutes"),
        (3600, "1 hour"),
        (43200, "12 hours"),
        (86400, "1 day"),
        (259200, "3 days"),
        (5400, "90 minutes"),
        (0, "0 seconds"),
    ],
)
def test_duration_text(seconds, expected):
    assert duration_text(seconds) == expected


@pytest.mark.parametrize(
    ("fen", "expected"), [(0, "0.00"), (1, "0.01"), (10099, "100.99"), (50_000_000, "500,000.00"), (-250, "-2.50")]
)
def test_yuan_text(fen, expected):
    assert yuan_text(fen) == expected


# --- transactions and refunds ------------------------------------------------------------------------


@override_settings(TRANSACTIONS_EXPORT_STREAM_LIMIT=1234)
def test_transactions_page_quotes_the_stream_limit(client_for, operator_a):
    response = client_for(operator_a).get(reverse("help:transactions"))

    assert "up to 1,234 transactions downloads at once" in _text(response)


def test_transactions_page_quotes_the_default_stream_limit(client_for, operator_a):
    response = client_for(operator_a).get(reverse("help:transactions"))

    assert "up to 50,000 transactions downloads at once" in _text(response)


@override_settings(APPROVAL_ACQUIRER_THRESHOLD_FEN=12_345_600, STEP_UP_MAX_AGE_SECONDS=600)
def test_refunds_page_quotes_the_acquirer_threshold(client_for, operator_a):
    response = client_for(operator_a).get(reverse("help:refunds"))

    text = _text(response)
    assert "totals ¥123,456.00 or more, a reviewer of the acquirer" in text
    assert "confirmed within the last 10 minutes" in text


def test_refunds_page_links_to_the_file_format_when_it_exists(client_for, operator_a):
    from django.urls import NoReverseMatch

    response = client_for(operator_a).get(reverse("help:refunds"))

    try:
        fmt_url = reverse("refunds:format_help")
    except NoReverseMatch:
        assert 'data-testid="refund-format-link"' not in response.content.decode()
    else:
        assert f'<a href="{fmt_url}" data-testid="refund-format-link">' in response.content.decode()


def test_api_page_links_to_docs_and_schema(client_for, operator_a):
    response = client_for(operator_a).get(reverse("help:api"))

    html = response.content.decode()
    assert f'<a href="{reverse("api-docs")}" data-testid="api-docs-link">' in html
    assert f'<a href="{reverse("api-schema")}" data-testid="api-schema-link">' in html
    assert "Idempotency-Key" in html


# --- sandbox -----------------------------------------------------------------------------------------


def test_sandbox_page_renders_the_outcomes(client_for, operator_a):
    from payments.sandbox.outcomes import TEST_CARDS

    response = client_for(operator_a).get(reverse("payments_help:sandbox"))
    html = response.content.decode()

    # every test card is a row, identified by its last four digits and shown masked only
    assert re.findall(r'<tr data-card="([a-z_]+)">', html) == list(TEST_CARDS)
    for pan in TEST_CARDS.values():
        assert pan not in html
        assert f"<code>{pan[:6]}{'*' * (len(pan) - 10)}{pan[-4:]}</code>" in html
    insufficient = re.search(r'<tr data-card="insufficient_balance">(.*?)</tr>', html, re.S).group(1)
    assert "<code>0002</code>" in insufficient
    assert "<code>64</code> 余额不足" in insufficient
    # the amount rules
    ninety_nine = re.search(r'<tr data-amount="10099">(.*?)</tr>', html, re.S).group(1)
    assert "<code>60</code> 交易失败详询发卡行" in ninety_nine
    one_fen = re.search(r'<tr data-amount="1">(.*?)</tr>', html, re.S).group(1)
    assert "<code>03</code>" in one_fen
    # the refund rules
    assert re.findall(r'<tr data-code="(\d+)">', html) == ["12", "35", "45", "36", "39"]
    assert "more than 330 days later" in html


def test_sandbox_link_in_the_help_menu(client_for, operator_a):
    response = client_for(operator_a).get(reverse("help:index"))

    assert f'href="{reverse("payments_help:sandbox")}" data-testid="help-sandbox-link"' in response.content.decode()


@override_settings(SANDBOX_ENABLED=False)
def test_sandbox_page_is_404_when_the_sandbox_is_off(client_for, operator_a):
    # given the sandbox switched off (the URL was mounted at start-up; the view checks again)
    client = client_for(operator_a)

    # when the sandbox help is opened
    response = client.get(reverse("payments_help:sandbox"))

    # then it does not exist, and the help menu does not link to it
    assert response.status_code == 404
    index = client.get(reverse("help:index"))
    assert 'data-testid="help-sandbox-link"' not in index.content.decode()
