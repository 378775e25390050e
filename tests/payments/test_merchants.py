"""商户信息查询: the acquirer's merchant search (page and API share MerchantFilterSet) and the API's merchant fields."""

import pytest
from django.test import Client

from payments.models import MerchantProfile
from payments.services import merchant_profile_save
from portal.audit.models import AuditEvent
from tests.factories import MerchantFactory, UserFactory, login_password_only

pytestmark = pytest.mark.django_db

PAGE = "/transactions/merchants/"
API = "/api/v1/merchants/"
FULL_ACCOUNT = "6217000010000012345"


@pytest.fixture
def merchants(acquirer, merchant_a):
    """Three more merchants of ``acquirer`` besides ``merchant_a`` (MCC 5311, active)."""
    return {
        "tea": MerchantFactory(
            acquirer=acquirer, code="898310099990001", name_zh="西湖茶庄", name_en="West Lake Tea House", mcc="5499"
        ),
        "teapot": MerchantFactory(
            acquirer=acquirer,
            code="898310099990002",
            name_zh="紫砂壶坊",
            name_en="Teapot Workshop",
            mcc="5719",
            status="suspended",
        ),
        "books": MerchantFactory(
            acquirer=acquirer, code="898310088880001", name_zh="新华书店", name_en="XINHUA BOOKS", mcc="5942"
        ),
    }


@pytest.fixture
def other_merchant(merchant_b):
    """A merchant of another acquirer whose fields match every search below."""
    merchant_b.code, merchant_b.name_zh, merchant_b.name_en, merchant_b.mcc = "898310099990009", "茶庄", "Tea", "5499"
    merchant_b.save()
    return merchant_b


def _page_codes(response) -> list[str]:
    assert response.status_code == 200
    return [row.record.code for row in response.context["table"].page.object_list]


def _api_codes(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [m["code"] for m in response.json()["results"]]


# --- search, on the page and through the API ---------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", ["books", "a", "tea", "teapot"]),
        ("code=898310099990001", ["tea"]),  # a whole merchant number: exact
        ("code=8983100999", ["tea", "teapot"]),  # its first digits: prefix
        ("code=+898310088880001+", ["books"]),  # surrounding blanks are ignored
        ("code=898310099990009", []),  # another acquirer's merchant number
        ("name=茶", ["tea"]),  # Chinese name, contains
        ("name=tea", ["tea", "teapot"]),  # English name, contains, ignoring case
        ("name=xinhua+books", ["books"]),
        ("name=Merchant", ["a"]),
        ("status=suspended", ["teapot"]),
        ("status=active", ["books", "a", "tea"]),
        ("mcc=5499", ["tea"]),
        ("mcc=5311", ["a"]),
        ("name=tea&status=active", ["tea"]),
        ("code=8983100999&mcc=5719", ["teapot"]),
        ("name=nothing-like-this", []),
    ],
)
def test_each_search_field_narrows_the_page_and_the_api(
    client_for, acquirer_reviewer, merchant_a, merchants, other_merchant, query, expected
):
    # given an acquirer's four merchants and another acquirer's merchant that matches every search
    names = {**merchants, "a": merchant_a}
    codes = sorted(names[key].code for key in expected)
    client = client_for(acquirer_reviewer)
    # when the page and the API are searched the same way
    page = client.get(f"{PAGE}?{query}")
    api = client.get(f"{API}?{query}")
    # then both list exactly the matching merchants of the acquirer, in merchant-number order
    assert _page_codes(page) == codes
    assert _api_codes(api) == codes
    assert f'href="{PAGE}{other_merchant.pk}/"' not in page.content.decode()
    assert api.json()["count"] == len(codes)


def test_a_search_never_reaches_another_acquirers_merchant(client_for, acquirer_reviewer, merchant_a, other_merchant):
    client = client_for(acquirer_reviewer)
    for query in (f"code={other_merchant.code}", "code=8983100", "name=Tea", "name=茶庄", "mcc=5499", "status=active"):
        assert other_merchant.code not in [*_page_codes(client.get(f"{PAGE}?{query}"))], query
        assert other_merchant.code not in _api_codes(client.get(f"{API}?{query}")), query
    # and its detail is simply not found, search or not
    assert client.get(f"{PAGE}{other_merchant.pk}/").status_code == 404
    assert client.get(f"{API}{other_merchant.pk}/").status_code == 404
    assert client.get(f"{API}{other_merchant.pk}/?code={other_merchant.code}").status_code == 404


def test_no_match_says_so(client_for, acquirer_reviewer, merchant_a):
    client = client_for(acquirer_reviewer)
    html = client.get(f"{PAGE}?name=nothing", HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    assert "没有符合查询条件的商户。" in html
    assert "No merchant matches the search." in client.get(f"{PAGE}?name=nothing").content.decode()


def test_the_search_form_keeps_its_values_and_paging_keeps_the_search(client_for, acquirer_reviewer, acquirer):
    for i in range(55):
        MerchantFactory(acquirer=acquirer, code=f"89831007777{i:04d}", name_en=f"Shop {i}")
    MerchantFactory(acquirer=acquirer, code="898310066660001", name_en="Shop elsewhere")
    client = client_for(acquirer_reviewer)
    first = client.get(f"{PAGE}?code=89831007777")
    assert len(_page_codes(first)) == 50
    html = first.content.decode()
    assert 'name="code" value="89831007777"' in html
    assert 'href="?code=89831007777&amp;page=2"' in html  # the pager keeps the search
    second = client.get(f"{PAGE}?code=89831007777&page=2")
    assert _page_codes(second) == [f"89831007777{i:04d}" for i in range(50, 55)]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("code=89831X", "code"),
        ("code=8983100999900011", "code"),  # 16 digits
        ("mcc=54", "mcc"),
        ("mcc=abcd", "mcc"),
        ("status=deleted", "status"),
        (f"name={'x' * 129}", "name"),
    ],
)
def test_invalid_input_is_a_clear_message_never_a_500(client_for, acquirer_reviewer, merchant_a, query, field):
    client = client_for(acquirer_reviewer)
    # the page: the form with the field's error, a hint, and no table
    page = client.get(f"{PAGE}?{query}")
    assert page.status_code == 200
    assert page.context["invalid"] is True and "table" not in page.context
    html = page.content.decode()
    assert f'data-testid="error-{field}"' in html and 'data-testid="invalid-search"' in html
    # the API: 400 in the one error envelope, naming the field
    api = client.get(f"{API}?{query}")
    assert api.status_code == 400
    error = api.json()["error"]
    assert error["code"] == "invalid" and list(error["fields"]) == [field]


def test_invalid_input_messages_are_translated(client_for, acquirer_reviewer):
    client = client_for(acquirer_reviewer)
    html = client.get(f"{PAGE}?code=abc&mcc=1", HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    assert "请输入商户号或其前几位数字（最多 15 位）。" in html
    assert "MCC 为 4 位数字。" in html
    assert "请修正上方的查询条件后重新查询。" in html


def test_the_search_page_and_api_take_a_fixed_number_of_queries(
    client_for, acquirer_reviewer, acquirer, django_assert_num_queries
):
    for i in range(60):
        merchant = MerchantFactory(acquirer=acquirer, name_en=f"Tea shop {i}")
        UserFactory(organisation=merchant, username=f"m{i}.operator", roles=["merchant_operator"])
        merchant_profile_save(actor=None, profile=MerchantProfile(merchant=merchant, products=["000201"]))
    client = client_for(acquirer_reviewer)
    client.get(f"{PAGE}?name=tea")  # the session and second factor settle on the first request
    # session, user, second-factor device, the count for the pager, the menu's pending approvals, the page
    with django_assert_num_queries(6):
        assert len(_page_codes(client.get(f"{PAGE}?name=tea&status=active"))) == 50
    # session, user, second-factor device, the count for the pager, the page (profiles joined in)
    with django_assert_num_queries(5):
        assert len(_api_codes(client.get(f"{API}?name=tea&status=active"))) == 50


# --- who may search ----------------------------------------------------------------------------------


def test_merchant_staff_without_the_permission_get_403_and_leave_no_trace(client_for, admin_a, operator_a):
    events = AuditEvent.objects.count()
    for user in (admin_a, operator_a):
        client = client_for(user)
        assert client.get(f"{PAGE}?name=tea").status_code == 403
        assert client.get(f"{API}?name=tea").status_code == 403
    assert AuditEvent.objects.count() == events


def test_a_merchant_auditor_finds_its_own_merchant_only(client_for, merchant_auditor, merchant_a, other_merchant):
    client = client_for(merchant_auditor)
    assert _page_codes(client.get(PAGE)) == [merchant_a.code]
    assert _page_codes(client.get(f"{PAGE}?code={merchant_a.code[:6]}")) == [merchant_a.code]
    assert _page_codes(client.get(f"{PAGE}?code={other_merchant.code}")) == []
    assert _api_codes(client.get(f"{API}?mcc=5499")) == []
    assert client.get(f"{API}{other_merchant.pk}/").status_code == 404


def test_anonymous_and_password_only_are_refused(acquirer_reviewer):
    anonymous = Client()
    response = anonymous.get(f"{PAGE}?name=tea")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
    assert anonymous.get(f"{API}?name=tea").status_code == 401
    half = Client()
    login_password_only(half, acquirer_reviewer)
    assert half.get(f"{PAGE}?name=tea")["Location"] == "/accounts/verify/"
    assert half.get(f"{API}?name=tea").status_code == 401


# --- the API's merchant fields -----------------------------------------------------------------------


def test_the_api_shows_what_the_detail_page_shows(client_for, acquirer_admin, merchant_a, operator_a):
    merchant_profile_save(
        actor=None,
        profile=MerchantProfile(
            merchant=merchant_a,
            settlement_bank="中国银行",
            products=["000201", "000501"],
            limit_per_txn=5_000_000,
            limit_daily=None,
            limit_monthly=200_000_000,
            refund_window_days=180,
        ),
        account_number=FULL_ACCOUNT,
    )
    client = client_for(acquirer_admin)
    page_fields = dict(client.get(f"{PAGE}{merchant_a.pk}/").context["fields"])
    response = client.get(f"{API}{merchant_a.pk}/")
    item = response.json()
    assert item["settlement_account_masked"] == "6217***********2345"
    assert page_fields["Settlement account"] == f"{item['settlement_account_masked']} ({item['settlement_bank']})"
    assert item["settlement_bank"] == "中国银行"
    assert item["products"] == [
        {"code": "000201", "name": "B2C gateway payment"},
        {"code": "000501", "name": "Collection"},
    ]
    assert (item["limit_per_txn"], item["limit_daily"], item["limit_monthly"]) == (5_000_000, None, 200_000_000)
    assert item["refund_window_days"] == 180
    assert item["user_count"] == 1
    assert FULL_ACCOUNT not in response.content.decode()
    listed = client.get(API).json()["results"]
    assert listed == [item]
    assert FULL_ACCOUNT not in client.get(API).content.decode()


def test_product_names_follow_the_language(client_for, acquirer_admin, merchant_a):
    merchant_profile_save(actor=None, profile=MerchantProfile(merchant=merchant_a, products=["000201"]))
    item = client_for(acquirer_admin).get(f"{API}{merchant_a.pk}/", HTTP_ACCEPT_LANGUAGE="zh-hans").json()
    assert item["products"][0]["code"] == "000201"
    assert item["products"][0]["name"] not in ("", "B2C gateway payment")


def test_a_merchant_without_a_profile_has_no_account_no_products_no_limits(client_for, acquirer_admin, merchant_a):
    item = client_for(acquirer_admin).get(f"{API}{merchant_a.pk}/").json()
    assert item["settlement_bank"] is None and item["settlement_account_masked"] is None
    assert item["products"] == []
    assert (item["limit_per_txn"], item["limit_daily"], item["limit_monthly"]) == (None, None, None)
    assert item["refund_window_days"] == 330


def test_the_schema_documents_the_search_and_the_fields(client_for, acquirer_admin):
    schema = client_for(acquirer_admin).get("/api/schema/?format=json").json()
    params = {p["name"]: p for p in schema["paths"]["/api/v1/merchants/"]["get"]["parameters"]}
    assert {"code", "name", "status", "mcc", "page", "page_size"} <= set(params)
    assert params["status"]["schema"]["enum"] == ["active", "closed", "suspended"]
    merchant = schema["components"]["schemas"]["Merchant"]
    assert {
        "products",
        "limit_per_txn",
        "limit_daily",
        "limit_monthly",
        "settlement_bank",
        "settlement_account_masked",
        "refund_window_days",
        "user_count",
    } <= set(merchant["properties"])
    assert merchant["properties"]["limit_daily"]["type"] == "integer"
    assert merchant["properties"]["limit_daily"]["nullable"] is True
    assert merchant["properties"]["products"]["items"]["$ref"] == "#/components/schemas/MerchantProduct"
