"""The sandbox acquirer over real HTTP (pytest-django's live_server): the portal's client, the sandbox's answers and
notifications, the receiver, and sandbox_traffic."""

from __future__ import annotations

import re
from datetime import datetime, time, timedelta
from io import StringIO
from pathlib import Path

import pytest
from django.apps import apps
from django.core.management import call_command
from django.db import connection

from payments.cards import luhn_valid
from payments.gateway.acp.respcodes import RespClass
from payments.gateway.config import gateway_client
from payments.gateway.services import transaction_confirm
from payments.models import Transaction
from payments.sandbox.models import SandboxStatus, SandboxTransaction
from payments.sandbox.outcomes import TEST_CARDS
from payments.sandbox.services import new_query_id, trace_fields
from payments.settlement import business_tz, settlement_date_for
from portal.accounts.models import Organisation
from portal.celery import app as celery_app

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def live(acp_settings, live_server):
    """The portal and its sandbox on the live server; jobs run at once (no worker)."""
    acp_settings.ACP_BASE_URL = live_server.url + "/sandbox/acp"
    acp_settings.ACP_BACK_URL = live_server.url + "/gateway/acp/notify/"
    acp_settings.CELERY_TASK_ALWAYS_EAGER = True
    before = celery_app.conf.task_always_eager
    celery_app.conf.update(task_always_eager=True)
    yield live_server
    celery_app.conf.update(task_always_eager=before)


def traffic(*args) -> str:
    out = StringIO()
    call_command("sandbox_traffic", *args, "--concurrency", "1", stdout=out)
    return out.getvalue()


def network_payment(merchant, *, amount=10000, when=None, status=SandboxStatus.SUCCESS, resp_code="00"):
    """A consume on the network side (as a cardholder would have made it)."""
    when = when or datetime.now(business_tz()) - timedelta(minutes=5)
    trace_no, trace_time = trace_fields(when)
    return SandboxTransaction.objects.create(
        mer_id=merchant.code,
        order_id=f"PAY{when:%H%M%S%f}",
        txn_time=when,
        txn_type="01",
        amount=amount,
        status=status,
        resp_code=resp_code,
        query_id=new_query_id(when),
        settle_date=settlement_date_for(when),
        trace_no=trace_no,
        trace_time=trace_time,
        card_masked="622202*********0001",
        card_hash="x" * 64,
        card_type="01",
    )


def test_sandbox_traffic_arrives_by_notification_once(live, merchant_a, merchant_b):
    output = traffic("--days", "2", "--per-day", "5", "--merchant", merchant_a.code, "--seed", "7")

    rows = Transaction.objects.filter(merchant=merchant_a)
    assert rows.count() == 10
    assert set(rows.values_list("source", flat=True)) == {"notification"}
    assert "10 payments" in output and "delivered 10" in output
    assert Transaction.objects.filter(merchant=merchant_b).count() == 0

    again = traffic("--days", "2", "--per-day", "5", "--merchant", merchant_a.code, "--seed", "7")

    assert Transaction.objects.filter(merchant=merchant_a).count() == 10
    assert "(0 new)" in again and "already delivered 10" in again


def test_refund_through_the_client_is_accepted_and_notified(live, merchant_a):
    # The merchant's number is random, and with it the seed's outcomes (5 % of the payments fail): take one that
    # succeeded among a few.
    traffic("--days", "1", "--per-day", "4", "--merchant", merchant_a.code, "--seed", "r")
    original = Transaction.objects.filter(merchant=merchant_a, status="success", amount__gte=100).first()
    assert original is not None

    with gateway_client(merchant_a.code) as client:
        result = client.refund(order_id="REFUND00000001", txn_amt=100, orig_qry_id=original.query_id)

    assert (result.status, result.response.resp_code) == (RespClass.SUCCESS, "00")
    refund = Transaction.objects.get(order_id="REFUND00000001")
    assert (refund.txn_type, refund.amount, refund.status, refund.orig_id) == ("04", 100, "success", original.pk)
    original.refresh_from_db()
    assert original.refunded_amount == 100
    network = SandboxTransaction.objects.get(order_id="REFUND00000001")
    assert network.delivered_at is not None and network.notify_attempts == 1


def test_refund_over_the_refundable_amount_is_refused(live, merchant_a):
    original = network_payment(merchant_a, amount=10000)

    with gateway_client(merchant_a.code) as client:
        first = client.refund(order_id="REFUNDPART0001", txn_amt=6000, orig_qry_id=original.query_id)
        second = client.refund(order_id="REFUNDPART0002", txn_amt=4001, orig_qry_id=original.query_id)
        rest = client.refund(order_id="REFUNDPART0003", txn_amt=4000, orig_qry_id=original.query_id)
        after = client.refund(order_id="REFUNDPART0004", txn_amt=1, orig_qry_id=original.query_id)

    assert [r.response.resp_code for r in (first, second, rest, after)] == ["00", "36", "00", "45"]
    assert second.status is RespClass.FAILURE
    original.refresh_from_db()
    assert original.refunded_amount == 10000
    assert not SandboxTransaction.objects.filter(order_id__in=["REFUNDPART0002", "REFUNDPART0004"]).exists()


def test_void_after_the_cut_off_is_refused(live, merchant_a, time_machine):
    tz = business_tz()
    today = datetime.now(tz).date()
    paid_at = datetime.combine(today, time(22, 30), tzinfo=tz)
    original = network_payment(merchant_a, amount=5000, when=paid_at)
    time_machine.move_to(datetime.combine(today, time(23, 0, 5), tzinfo=tz), tick=True)

    with gateway_client(merchant_a.code) as client:
        result = client.void(order_id="VOIDLATE000001", txn_amt=5000, orig_qry_id=original.query_id)

    assert (result.status, result.response.resp_code) == (RespClass.FAILURE, "39")
    assert not SandboxTransaction.objects.filter(order_id="VOIDLATE000001").exists()


def test_void_before_the_cut_off_must_be_for_the_full_amount(live, merchant_a, time_machine):
    tz = business_tz()
    today = datetime.now(tz).date()
    original = network_payment(merchant_a, amount=5000, when=datetime.combine(today, time(10, 0), tzinfo=tz))
    time_machine.move_to(datetime.combine(today, time(22, 59, 0), tzinfo=tz), tick=True)

    with gateway_client(merchant_a.code) as client:
        partial = client.void(order_id="VOIDPART000001", txn_amt=4999, orig_qry_id=original.query_id)
        full = client.void(order_id="VOIDFULL000001", txn_amt=5000, orig_qry_id=original.query_id)

    assert [partial.response.resp_code, full.response.resp_code] == ["36", "00"]


def test_collection_outcomes_follow_the_test_cards(live, merchant_a):
    with gateway_client(merchant_a.code) as client:
        ok = client.collect(order_id="COLLECTOK00001", txn_amt=2000, acc_no=TEST_CARDS["success"])
        poor = client.collect(order_id="COLLECTNO00001", txn_amt=2000, acc_no=TEST_CARDS["insufficient_balance"])
        invalid = client.collect(order_id="COLLECTBAD0001", txn_amt=2000, acc_no="6222020000000090002")

    assert [ok.response.resp_code, poor.response.resp_code, invalid.response.resp_code] == ["00", "00", "61"]
    by_order = {t.order_id: t for t in Transaction.objects.filter(merchant=merchant_a)}
    assert (by_order["COLLECTOK00001"].status, by_order["COLLECTNO00001"].status) == ("success", "failed")
    assert by_order["COLLECTNO00001"].resp_code == "64"
    assert "COLLECTBAD0001" not in by_order


def test_confirm_by_query_is_idempotent(live, merchant_a):
    traffic("--days", "1", "--per-day", "1", "--merchant", merchant_a.code, "--seed", "q")
    txn = Transaction.objects.get(merchant=merchant_a)
    before = txn.updated_at

    assert transaction_confirm(txn_id=txn.pk) == txn.status
    assert transaction_confirm(txn_id=txn.pk) == txn.status

    txn.refresh_from_db()
    assert txn.updated_at == before


# --- issue 3 §5: no card number in clear after a sandbox run ------------------------------------------------------

_DIGITS = re.compile(r"(?<![0-9A-Za-z])\d{13,19}(?![0-9A-Za-z])")
_HEX_DIGEST = re.compile(r"[0-9a-f]{32,}")


def _card_like(text: str, allowed: set[str]) -> list[str]:
    if _HEX_DIGEST.fullmatch(text):
        return []
    return [m for m in _DIGITS.findall(text) if luhn_valid(m) and m not in allowed]


def test_no_card_number_in_database_media_or_logs(live, merchant_a, settings, tmp_path, caplog):
    settings.MEDIA_ROOT = tmp_path / "media"
    caplog.set_level("DEBUG")
    traffic("--days", "2", "--per-day", "5", "--merchant", merchant_a.code, "--seed", "scan")
    with gateway_client(merchant_a.code) as client:
        client.collect(order_id="COLLECTSCAN001", txn_amt=3000, acc_no=TEST_CARDS["success"])
        client.refund(
            order_id="REFUNDSCAN0001", txn_amt=100, orig_qry_id=Transaction.objects.filter(status="success")[0].query_id
        )
    # Merchant numbers are 15-digit public identifiers, not card numbers.
    allowed = set(Organisation.objects.values_list("code", flat=True))

    found = []
    with connection.cursor() as cursor:
        for model in apps.get_models():
            columns = [
                f.column
                for f in model._meta.concrete_fields
                if f.get_internal_type()
                in ("CharField", "TextField", "JSONField", "EmailField", "URLField", "SlugField")
            ]
            if not columns:
                continue
            table = connection.ops.quote_name(model._meta.db_table)
            cursor.execute(f"SELECT {', '.join(connection.ops.quote_name(c) for c in columns)} FROM {table}")
            for row in cursor.fetchall():
                for value in row:
                    if value:
                        found += [(model._meta.label, n) for n in _card_like(str(value), allowed)]
    for directory in (Path(settings.MEDIA_ROOT), Path(settings.SANDBOX_DIR)):
        if directory.exists():
            for path in directory.rglob("*"):
                if path.is_file():
                    found += [(str(path), n) for n in _card_like(path.read_bytes().decode("latin-1"), allowed)]
    found += [("log", n) for record in caplog.records for n in _card_like(record.getMessage(), allowed)]

    assert Transaction.objects.filter(merchant=merchant_a).count() == 12
    assert found == []
