"""The gateway client against a local HTTP server that verifies the request signature and answers signed."""

import socket
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from payments.gateway.acp.client import (
    BACK_QUERY_DELAYS,
    PATH_BACK,
    PATH_BATCH,
    PATH_QUERY,
    GatewayClient,
    GatewayConfig,
    query_schedule,
)
from payments.gateway.acp.codec import decode_request, encode_response
from payments.gateway.acp.errors import (
    GatewayConnectionError,
    GatewayHTTPError,
    GatewayResponseError,
    GatewayTimeoutError,
)
from payments.gateway.acp.filecontent import encode_file_content
from payments.gateway.acp.respcodes import RespClass
from payments.gateway.acp.signing import Signer, Verifier

from .conftest import MER_ID

ECHO = (
    "version",
    "encoding",
    "merId",
    "orderId",
    "txnTime",
    "txnType",
    "txnSubType",
    "bizType",
    "accessType",
    "batchNo",
)


class FakeGateway:
    """Plays the network: verifies the merchant's signature (by certId), answers signed with ``signPubKeyCert``."""

    def __init__(self, ca, merchant_cert):
        self.signer = ca.signer()
        self.verifier = Verifier(verify_certs=[merchant_cert], accept_cert_id_for_510=True)
        self.requests = []  # (path, params)
        self.rejected = []
        self.answers = {}  # path -> list of callables(request) -> dict | (status, bytes); last one repeats
        self.delay = 0.0

    def answer(self, path, request):
        if self.delay:
            time.sleep(self.delay)
        queue = self.answers.get(path) or [lambda req: {"respCode": "00", "respMsg": "成功"}]
        producer = queue.pop(0) if len(queue) > 1 else queue[0]
        result = producer(request)
        if isinstance(result, tuple):
            return result
        fields = {key: request[key] for key in ECHO if key in request} | result
        tamper = fields.pop("_tamper", None)
        signed = self.signer.sign(fields, include_cert=True)
        if tamper:
            signed.update(tamper)
        return 200, encode_response(signed)


@pytest.fixture
def gateway(ca, merchant):
    fake = FakeGateway(ca, merchant[1])

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            params = decode_request(body)
            if not fake.verifier.is_valid(params):
                fake.rejected.append(params)
                status, payload = 200, b"respCode=11&respMsg=bad signature"
            else:
                fake.requests.append((self.path, params))
                status, payload = fake.answer(self.path, params)
            self.send_response(status)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    fake.base_url = f"http://127.0.0.1:{server.server_address[1]}/sandbox/acp"
    yield fake
    server.shutdown()
    server.server_close()


class SleepRecorder:
    def __init__(self):
        self.calls = []

    def __call__(self, seconds):
        self.calls.append(seconds)


@pytest.fixture
def sleeps():
    return SleepRecorder()


def make_client(ca, merchant, gateway, sleeps, **overrides):
    key, cert = merchant
    config = GatewayConfig(
        base_url=gateway.base_url,
        signer=Signer(key, cert),
        verifier=ca.verifier(),
        mer_id=MER_ID,
        back_url="http://127.0.0.1:8000/gateway/acp/notify/",
        read_timeout=overrides.pop("read_timeout", 5.0),
        **overrides,
    )
    return GatewayClient(config, sleep=sleeps, clock=lambda: datetime(2025, 1, 1, 4, 0, tzinfo=UTC))


@pytest.fixture
def client(ca, merchant, gateway, sleeps):
    with make_client(ca, merchant, gateway, sleeps) as c:
        yield c


def pending(req):
    return {"respCode": "05", "respMsg": "交易已受理，请稍后查询交易结果"}


def query_answer(orig):
    return lambda req: {"respCode": "00", "origRespCode": orig, "queryId": "201501011200000000009"}


def test_query_schedule_is_the_protocol_one():
    assert list(query_schedule()) == [1, 2, 4, 8, 16, 32]
    assert list(query_schedule("payout"))[:2] == [180, 1]
    with pytest.raises(ValueError):
        list(query_schedule("weekly"))


def test_refund_accepted_sends_a_signed_request_and_returns_the_verified_answer(client, gateway, sleeps):
    result = client.refund(order_id="RF20250101001", txn_amt=100, orig_qry_id="201501011200000000001")
    assert result.status is RespClass.SUCCESS
    assert result.response.resp_code == "00"
    assert result.query is None and sleeps.calls == []
    path, request = gateway.requests[0]
    assert path == "/sandbox/acp" + PATH_BACK
    assert (request["txnType"], request["txnTime"], request["certId"]) == ("04", "20250101120000", "70000000001")
    assert result.response.verification.certificate == gateway.signer.certificate
    assert gateway.rejected == []


def test_pending_answer_runs_the_whole_query_schedule(client, gateway, sleeps):
    gateway.answers["/sandbox/acp" + PATH_BACK] = [pending]
    gateway.answers["/sandbox/acp" + PATH_QUERY] = [query_answer("05")]
    result = client.refund(order_id="RF20250101002", txn_amt=100, orig_qry_id="201501011200000000001")
    assert sleeps.calls == [1, 2, 4, 8, 16, 32]
    assert result.status is RespClass.PENDING_QUERY
    assert result.query.attempts == 6
    queries = [req for path, req in gateway.requests if path.endswith(PATH_QUERY)]
    assert len(queries) == 6
    assert {(q["txnType"], q["orderId"], q["txnTime"]) for q in queries} == {("00", "RF20250101002", "20250101120000")}


def test_query_stops_at_the_first_final_answer(client, gateway, sleeps):
    gateway.answers["/sandbox/acp" + PATH_BACK] = [pending]
    gateway.answers["/sandbox/acp" + PATH_QUERY] = [
        lambda req: {"respCode": "34", "respMsg": "查无此交易"},
        query_answer("03"),
        query_answer("00"),
    ]
    result = client.void(order_id="VD20250101001", txn_amt=100, orig_qry_id="201501011200000000001")
    assert sleeps.calls == [1, 2, 4]
    assert result.status is RespClass.SUCCESS
    assert result.query.response.query_id == "201501011200000000009"


def test_query_final_failure(client, gateway, sleeps):
    gateway.answers["/sandbox/acp" + PATH_BACK] = [lambda req: {"respCode": "03"}]
    gateway.answers["/sandbox/acp" + PATH_QUERY] = [query_answer("35")]
    result = client.refund(order_id="RF20250101003", txn_amt=100, orig_qry_id="201501011200000000001")
    assert (result.status, sleeps.calls) == (RespClass.FAILURE, [1])


def test_payout_keeps_querying_on_its_extra_codes(client, gateway, sleeps):
    gateway.answers["/sandbox/acp" + PATH_BACK] = [pending]
    gateway.answers["/sandbox/acp" + PATH_QUERY] = [query_answer("01"), query_answer("60"), query_answer("00")]
    result = client.payout(order_id="DF20250101001", txn_amt=100, acc_no="6221558812340000")
    assert (result.status, sleeps.calls) == (RespClass.SUCCESS, [1, 2, 4])
    assert "accNo" not in result.request  # results never carry card data


def test_final_failure_is_not_queried(client, gateway, sleeps):
    gateway.answers["/sandbox/acp" + PATH_BACK] = [lambda req: {"respCode": "45"}]
    result = client.refund(order_id="RF20250101004", txn_amt=100, orig_qry_id="201501011200000000001")
    assert (result.status, sleeps.calls, len(gateway.requests)) == (RespClass.FAILURE, [], 1)


def test_timeout_raises_a_clear_error(ca, merchant, gateway, sleeps):
    gateway.delay = 1.0
    with make_client(ca, merchant, gateway, sleeps, read_timeout=0.2) as slow:
        with pytest.raises(GatewayTimeoutError, match="state is unknown") as caught:
            slow.refund(order_id="RF20250101005", txn_amt=100, orig_qry_id="201501011200000000001")
    assert (caught.value.order_id, caught.value.txn_time) == ("RF20250101005", "20250101120000")


def test_connection_refused(ca, merchant, sleeps):
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()

    class Nowhere:
        base_url = f"http://127.0.0.1:{port}"

    with make_client(ca, merchant, Nowhere, sleeps) as c, pytest.raises(GatewayConnectionError):
        c.query(order_id="RF20250101001", txn_time="20250101120000")


def test_http_error_status(client, gateway):
    gateway.answers["/sandbox/acp" + PATH_QUERY] = [lambda req: (500, b"oops")]
    with pytest.raises(GatewayHTTPError) as caught:
        client.query(order_id="RF20250101001", txn_time="20250101120000")
    assert caught.value.status_code == 500


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (lambda req: {"respCode": "00", "_tamper": {"respCode": "05"}}, "signature"),
        (lambda req: {"respCode": "00", "_tamper": {"signature": ""}}, "signature"),
        (lambda req: (200, b"respCode=00&respMsg=unsigned"), "signature"),
        (lambda req: {"respCode": "00", "orderId": "OTHER0000001"}, "orderId does not match"),
        (lambda req: (200, b"respCode={00"), "malformed"),
    ],
)
def test_bad_answers_are_refused(client, gateway, answer, message):
    gateway.answers["/sandbox/acp" + PATH_QUERY] = [answer]
    with pytest.raises(GatewayResponseError, match=message):
        client.query(order_id="RF20250101001", txn_time="20250101120000")


def test_answer_signed_by_a_foreign_ca_is_refused(client, gateway, other_ca):
    gateway.signer = other_ca.signer()
    with pytest.raises(GatewayResponseError, match="signature"):
        client.query(order_id="RF20250101001", txn_time="20250101120000")


def test_batch_batch_query_and_file_transfer(client, gateway):
    gateway.answers["/sandbox/acp" + PATH_BATCH] = [
        lambda req: {"respCode": "00"},
        lambda req: {"respCode": "00", "fileContent": encode_file_content(b"result")},
    ]
    gateway.answers["/sandbox/acp/filedownload/"] = [
        lambda req: {"respCode": "00", "settleDate": req["settleDate"], "fileContent": encode_file_content(b"PK zip")}
    ]
    submitted = client.batch(
        txn_sub_type="03", batch_no="0001", total_qty=1, total_amt=100, file_content=encode_file_content(b"x")
    )
    assert submitted.resp_code == "00"
    assert client.batch_query(txn_sub_type="03", batch_no="0001", txn_time="20250101120000").file_content() == b"result"
    assert client.file_transfer(settle_date="0119").file_content() == b"PK zip"
    assert [(req["txnType"], req.get("batchNo")) for _, req in gateway.requests] == [
        ("21", "0001"),
        ("22", "0001"),
        ("76", None),
    ]


def test_default_delays_constant():
    assert BACK_QUERY_DELAYS == (1, 2, 4, 8, 16, 32)
