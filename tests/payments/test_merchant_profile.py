"""Merchant profiles: refund window per merchant, the acquirer's merchant detail, the admin, the seed."""

from datetime import timedelta

import pytest
import time_machine
from django.core.management import call_command

from payments import selectors
from payments.cards import mask_account
from payments.models import MerchantProfile, Transaction
from payments.services import merchant_profile_save
from portal.audit.models import AuditEvent
from tests.factories import MerchantFactory

from .conftest import bj

pytestmark = pytest.mark.django_db

NOW = bj(2026, 3, 10, 15, 0, 0)


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(NOW, tick=False):
        yield


def _profile(merchant, **values) -> MerchantProfile:
    return merchant_profile_save(actor=None, profile=MerchantProfile(merchant=merchant, **values))


def test_refund_window_per_merchant_changes_refundable_until(client_for, operator_a, merchant_a, make_txn):
    txn = make_txn(merchant_a, order_id="PAY1", amount=10000, txn_time=bj(2026, 3, 1, 9, 0))
    default = client_for(operator_a).get(f"/transactions/{txn.pk}/").context["position"]
    assert default.until.isoformat() == "2027-01-25"  # 330 days
    _profile(merchant_a, refund_window_days=5)
    position = client_for(operator_a).get(f"/transactions/{txn.pk}/").context["position"]
    assert position.until.isoformat() == "2026-03-06"
    assert (position.expired, position.remaining) == (True, 0)


def test_refund_window_in_the_api_amount(client_for, operator_a, merchant_a, make_txn):
    make_txn(merchant_a, order_id="PAY1", amount=10000, txn_time=bj(2026, 3, 5, 9, 0))
    client = client_for(operator_a)
    assert client.get("/api/v1/transactions/").json()["results"][0]["refundable_amount"] == 10000
    _profile(merchant_a, refund_window_days=3)
    assert client.get("/api/v1/transactions/").json()["results"][0]["refundable_amount"] == 0


def test_refund_window_is_per_merchant(merchant_a, merchant_b, make_txn):
    make_txn(merchant_a, txn_time=NOW - timedelta(days=10))
    make_txn(merchant_b, txn_time=NOW - timedelta(days=10))
    _profile(merchant_a, refund_window_days=7)
    a = Transaction.objects.select_related("merchant__merchant_profile").get(merchant=merchant_a)
    b = Transaction.objects.select_related("merchant__merchant_profile").get(merchant=merchant_b)
    assert selectors.refund_position(a).expired is True
    assert selectors.refund_position(b).expired is False


def test_acquirer_sees_the_profile_on_the_merchant_detail(client_for, acquirer_admin, merchant_a):
    _profile(
        merchant_a,
        settlement_account_masked=mask_account("6217000010000012345"),
        settlement_bank="中国银行",
        products=["000201", "000501"],
        limit_per_txn=5_000_000,
        limit_daily=None,
        limit_monthly=200_000_000,
        refund_window_days=180,
    )
    response = client_for(acquirer_admin).get(f"/transactions/merchants/{merchant_a.pk}/")
    fields = dict(response.context["fields"])
    assert fields["Settlement account"] == "6217***********2345 (中国银行)"
    assert fields["Products"] == "000201 B2C gateway payment; 000501 Collection"
    assert fields["Limit per transaction (yuan)"] == "50,000.00"
    assert fields["Daily limit (yuan)"] == "No limit"
    assert fields["Monthly limit (yuan)"] == "2,000,000.00"
    assert fields["Online refund window"] == "180 days"
    assert "6217000010000012345" not in response.content.decode()


def test_another_acquirers_merchant_is_404(client_for, acquirer_admin, merchant_b):
    _profile(merchant_b, settlement_account_masked="6217****1234")
    assert client_for(acquirer_admin).get(f"/transactions/merchants/{merchant_b.pk}/").status_code == 404


def test_api_merchant_shows_the_masked_account(client_for, acquirer_admin, merchant_a):
    _profile(merchant_a, settlement_account_masked="6217***********2345")
    item = client_for(acquirer_admin).get(f"/api/v1/merchants/{merchant_a.pk}/").json()
    assert item["settlement_account_masked"] == "6217***********2345"


def test_account_numbers_are_stored_masked_only(merchant_a):
    profile = merchant_profile_save(
        actor=None, profile=MerchantProfile(merchant=merchant_a), account_number="6217 0000 1000 0012 345"
    )
    profile.refresh_from_db()
    assert profile.settlement_account_masked == "6217***********2345"
    event = AuditEvent.objects.get(action="merchant.profile_saved")
    assert "6217000010000012345" not in str(event.details)
    assert mask_account("12345678") == "****5678"


def test_unknown_product_or_non_merchant_is_refused(merchant_a, acquirer):
    with pytest.raises(ValueError):
        _profile(merchant_a, products=["999999"])
    with pytest.raises(ValueError):
        _profile(acquirer)
    assert not MerchantProfile.objects.exists()


def test_admin_is_for_platform_admins(client_for, platform_admin, acquirer_admin, merchant_a):
    add = "/admin/payments/merchantprofile/add/"
    response = client_for(platform_admin).post(
        add,
        {
            "merchant": merchant_a.pk,
            "refund_window_days": 200,
            "settlement_bank": "Bank",
            "products": ["000201"],
            "account_number": "6217000010000012345",
            "limit_per_txn": "",
            "limit_daily": "100000",
            "limit_monthly": "",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    profile = MerchantProfile.objects.get()
    assert (profile.refund_window_days, profile.products, profile.limit_daily) == (200, ["000201"], 100000)
    assert profile.settlement_account_masked == "6217***********2345"
    event = AuditEvent.objects.get(action="merchant.profile_saved")
    assert event.actor == platform_admin
    assert client_for(acquirer_admin).get(add).status_code in (302, 403)


def test_seed_creates_demo_profiles_once():
    first = MerchantFactory(code="898310000000001")
    MerchantFactory(code="898310000000002")
    call_command("seed_payments_demo")
    call_command("seed_payments_demo")
    assert MerchantProfile.objects.count() == 2
    assert MerchantProfile.objects.get(merchant=first).products == ["000201", "000301", "000501"]
    assert AuditEvent.objects.filter(action="merchant.profile_saved").count() == 2
