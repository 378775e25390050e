"""Sandbox services in process: outcomes, the notification schedule with retries, batches, file transfer."""

from __future__ import annotations

from datetime import datetime, timedelta

import httpx
import pytest
from django.test import Client
from django.utils import timezone

from payments.gateway.acp.codec import decode_response
from payments.gateway.acp.filecontent import decode_file_text, encode_file_text
from payments.models import Transaction
from payments.sandbox import services
from payments.sandbox.models import SandboxTransaction
from payments.sandbox.outcomes import TEST_CARDS, decide
from payments.settlement import business_tz, settlement_date_for
from tests.sandbox.test_live import _card_like

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("card", "amount", "expected"),
    [
        (TEST_CARDS["success"], 1000, ("00", "success", "00")),
        (TEST_CARDS["insufficient_balance"], 1000, ("00", "failed", "64")),
        (TEST_CARDS["pending"], 1000, ("00", "pending", "05")),
        (TEST_CARDS["card_status"], 1000, ("00", "failed", "63")),
        ("6222020000000090002", 1000, ("61", "failed", "61")),
        (TEST_CARDS["success_credit"], 10099, ("00", "failed", "60")),
        (TEST_CARDS["success"], 1, ("03", "pending", "05")),
    ],
)
def test_outcome_table(card, amount, expected):
    outcome = decide(amount=amount, card_number=card)

    assert (outcome.sync_code, outcome.status, outcome.resp_code) == expected


def test_the_card_scan_detects_a_card_number():
    assert _card_like("paid with 6222020000000090001 today", set()) == ["6222020000000090001"]
    assert _card_like("merchant 6222020000000090001", {"6222020000000090001"}) == []


def _network_refund(merchant, back_url):
    when = timezone.now() - timedelta(seconds=5)
    trace_no, trace_time = services.trace_fields(when)
    return SandboxTransaction.objects.create(
        mer_id=merchant.code,
        order_id="PAYRETRY000001",
        txn_time=when,
        txn_type="01",
        amount=880,
        status="success",
        resp_code="00",
        query_id=services.new_query_id(when),
        settle_date=settlement_date_for(when),
        trace_no=trace_no,
        trace_time=trace_time,
        card_masked="622202*********0001",
        card_hash="0" * 64,
        card_type="01",
        back_url=back_url,
    )


def test_notification_is_retried_on_the_compressed_schedule(acp_settings, merchant_a, time_machine, monkeypatch):
    from payments.gateway import tasks as gateway_tasks

    monkeypatch.setattr(gateway_tasks.confirm_transaction, "delay", lambda pk: None)
    time_machine.move_to(timezone.now(), tick=False)
    receiver = Client()
    answers: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if not answers:
            answers.append(500)
            return httpx.Response(500)
        response = receiver.post(
            request.url.path, data=request.content, content_type="application/x-www-form-urlencoded"
        )
        answers.append(response.status_code)
        return httpx.Response(response.status_code, content=response.content)

    http = httpx.Client(transport=httpx.MockTransport(handler))
    txn = _network_refund(merchant_a, "http://testserver/gateway/acp/notify/")

    first = services.sandbox_notify_attempt(txn.pk, http=http)
    too_early = services.sandbox_notify_attempt(txn.pk, http=http)
    time_machine.shift(timedelta(seconds=1))
    second = services.sandbox_notify_attempt(txn.pk, http=http)

    assert (first, too_early, second) == (1.0, 1.0, None)
    assert answers == [500, 200]
    txn.refresh_from_db()
    assert (txn.notify_attempts, txn.delivered_at is not None) == (2, True)
    assert Transaction.objects.get(order_id="PAYRETRY000001").amount == 880
    assert services.sandbox_notify_attempt(txn.pk, http=http) is None  # delivered: nothing more
    assert answers == [500, 200]


def test_notifications_stop_after_the_last_attempt(acp_settings, merchant_a, time_machine):
    time_machine.move_to(timezone.now(), tick=False)
    http = httpx.Client(transport=httpx.MockTransport(lambda request: httpx.Response(503)))
    txn = _network_refund(merchant_a, "http://testserver/gateway/acp/notify/")

    delays = []
    for _ in range(6):
        delays.append(services.sandbox_notify_attempt(txn.pk, http=http))
        time_machine.shift(timedelta(seconds=5))

    assert delays == [1.0, 2.0, 4.0, None, None, None]
    txn.refresh_from_db()
    assert (txn.notify_attempts, txn.delivered_at) == (4, None)


def _signed_request(signer, **fields):
    base = {"version": "5.1.0", "encoding": "UTF-8", "signMethod": "01", "accessType": "0"}
    return signer.sign({**base, **fields})


@pytest.fixture
def portal_signer(acp_settings):
    from payments.gateway.config import portal_signer

    return portal_signer()


def _post(client, path, params):
    from payments.gateway.acp.codec import encode_request

    response = client.post(
        "/sandbox/acp/" + path, data=encode_request(params), content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 200
    answer = decode_response(response.content)
    # The answer is signed by the network's key, as the portal's verifier accepts it.
    from payments.gateway.config import portal_verifier

    portal_verifier().verify(answer)
    return answer


def test_batch_collection_is_processed_and_its_result_file_masks_cards(client, portal_signer, merchant_a):
    now = datetime.now(business_tz())
    txn_time = now.strftime("%Y%m%d%H%M%S")
    text = (
        "5.0.0|3000|2||\r\n"
        "orderId|currencyCode|txnAmt|accType|accNo|customerNm\r\n"
        f"BATCHLINE00001|156|1000|01|{TEST_CARDS['success']}|张三\r\n"
        f"BATCHLINE00002|156|2000|01|{TEST_CARDS['insufficient_balance']}|李四\r\n"
    )
    fields = dict(
        txnType="21",
        txnSubType="02",
        bizType="000501",
        channelType="07",
        merId=merchant_a.code,
        batchNo="0001",
        txnTime=txn_time,
        totalQty="2",
        totalAmt="3000",
        fileContent=encode_file_text(text),
    )

    submitted = _post(client, "gateway/api/batchTrans.do", _signed_request(portal_signer, **fields))
    query = dict(
        txnType="22",
        txnSubType="02",
        bizType="000501",
        channelType="07",
        merId=merchant_a.code,
        batchNo="0001",
        txnTime=txn_time,
    )
    result = _post(client, "gateway/api/batchTrans.do", _signed_request(portal_signer, **query))

    assert (submitted["respCode"], result["respCode"]) == ("00", "00")
    lines = decode_file_text(result["fileContent"]).splitlines()
    assert lines[0] == "5.0.0|3000|2|||1000|1||"
    assert lines[1].endswith("|respCode|respMsg|queryId|sysTraNo|sysTm|settleDate")
    assert lines[2].split("|")[4] == "622202*********0001"
    assert [line.split("|")[6] for line in lines[2:]] == ["00", "64"]
    assert _card_like(result["fileContent"], set()) == []


def test_batch_with_wrong_totals_is_refused(client, portal_signer, merchant_a):
    text = "5.0.0|999|1||\r\norderId|txnAmt|accNo\r\nBATCHLINE00003|1000|" + TEST_CARDS["success"] + "\r\n"
    fields = dict(
        txnType="21",
        txnSubType="02",
        bizType="000501",
        channelType="07",
        merId=merchant_a.code,
        batchNo="0002",
        txnTime=datetime.now(business_tz()).strftime("%Y%m%d%H%M%S"),
        totalQty="1",
        totalAmt="999",
        fileContent=encode_file_text(text),
    )

    answer = _post(client, "gateway/api/batchTrans.do", _signed_request(portal_signer, **fields))

    assert answer["respCode"] == "14"
    assert not SandboxTransaction.objects.exists()


def test_file_transfer_answers_98_until_the_file_exists(client, portal_signer, merchant_a, acp_settings):
    today = datetime.now(business_tz())
    fields = dict(
        txnType="76",
        txnSubType="01",
        bizType="000000",
        merId=merchant_a.code,
        txnTime=today.strftime("%Y%m%d%H%M%S"),
        settleDate=today.strftime("%m%d"),
        fileType="00",
    )

    missing = _post(client, "filedownload/", _signed_request(portal_signer, **fields))
    files = acp_settings.SANDBOX_DIR / "files"
    files.mkdir(exist_ok=True)
    path = files / f"{merchant_a.code}_{today:%Y%m%d}.zip"
    path.write_bytes(b"PK\x05\x06" + b"\0" * 18)
    try:
        found = _post(client, "filedownload/", _signed_request(portal_signer, **fields))
    finally:
        path.unlink()

    assert (missing["respCode"], missing["respMsg"]) == ("98", "文件不存在")
    assert (found["respCode"], found["fileName"]) == ("00", path.name)


def test_unsigned_request_is_answered_11(client, acp_settings, merchant_a):
    from payments.gateway.acp.codec import encode_request

    params = {
        "version": "5.1.0",
        "txnType": "00",
        "merId": merchant_a.code,
        "orderId": "ORDERX00001",
        "txnTime": "20260310120000",
        "signature": "AAAA",
        "signMethod": "01",
        "certId": "1",
    }
    response = client.post(
        "/sandbox/acp/gateway/api/queryTrans.do",
        data=encode_request(params),
        content_type="application/x-www-form-urlencoded",
    )

    assert decode_response(response.content)["respCode"] == "11"


def test_query_of_an_unknown_order_answers_34(client, portal_signer, merchant_a):
    fields = dict(
        txnType="00",
        txnSubType="00",
        bizType="000000",
        merId=merchant_a.code,
        orderId="NOSUCHORDER01",
        txnTime="20260310120000",
    )

    assert _post(client, "gateway/api/queryTrans.do", _signed_request(portal_signer, **fields))["respCode"] == "34"
