"""Back-office ACP client over HTTP (``httpx``): void, refund, query, collection, payout, batch, file transfer.

Every request is built by :mod:`.messages`, signed by the configured signer, POSTed form-encoded, and every answer is
decoded, verified (a missing or wrong signature is a :class:`GatewayResponseError`, never a result) and matched to the
request (``merId``, ``orderId``, ``txnTime``, ``batchNo`` ... must echo). A pending answer (``03``/``04``/``05``) runs
the protocol's query schedule (:func:`query_schedule`: 1, 2, 4, 8, 16, 32 s) through an injectable ``sleep``.

The client takes an explicit :class:`GatewayConfig`; building one from Django settings is the app layer's job.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType

import httpx

from . import messages as m
from .codec import decode_response, encode_request
from .errors import (
    ACPFormatError,
    GatewayConnectionError,
    GatewayError,
    GatewayHTTPError,
    GatewayResponseError,
    GatewayTimeoutError,
    SignatureError,
)
from .filecontent import decode_file_content
from .respcodes import RespClass, classify
from .signing import SecretKeySigner, Signer, Verification, Verifier

logger = logging.getLogger(__name__)

PATH_BACK = "/gateway/api/backTransReq.do"
PATH_QUERY = "/gateway/api/queryTrans.do"
PATH_BATCH = "/gateway/api/batchTrans.do"

PRODUCTION_BASE_URL = "https://gateway.95516.com"
TEST_BASE_URL = "https://gateway.test.95516.com"
PRODUCTION_FILE_TRANSFER_URL = "https://filedownload.95516.com/"
TEST_FILE_TRANSFER_URL = "https://filedownload.test.95516.com/"

#: Back-office money transactions: query after 1, 2, 4, 8, 16 and 32 s while the answer is 03/04/05 (formats.md §4).
BACK_QUERY_DELAYS: tuple[float, ...] = (1, 2, 4, 8, 16, 32)
#: Front (browser) transactions: query at 5, 10, 30, 60 and 120 min after the request (as delays between queries).
FRONT_QUERY_DELAYS: tuple[float, ...] = (300, 300, 1200, 1800, 3600)
#: 代付: first query 3 min after the submission, then the back-office schedule.
PAYOUT_QUERY_DELAYS: tuple[float, ...] = (180, *BACK_QUERY_DELAYS)

#: Fields an answer must echo unchanged when both the request and the answer carry them.
_ECHO_FIELDS = ("merId", "orderId", "txnTime", "batchNo", "txnType", "txnSubType", "settleDate")


def query_schedule(kind: str = "back") -> Iterator[float]:
    """Yield the delays (seconds) to wait before each status query: ``back``, ``front`` or ``payout``."""
    delays = {"back": BACK_QUERY_DELAYS, "front": FRONT_QUERY_DELAYS, "payout": PAYOUT_QUERY_DELAYS}.get(kind)
    if delays is None:
        raise ValueError(f"unknown query schedule {kind!r}")
    yield from delays


@dataclass(frozen=True)
class GatewayConfig:
    """Everything the client needs; the app layer builds it from settings (later: from the key store).

    ``base_url`` is the host (and prefix) under which ``/gateway/api/...`` lives, e.g. ``https://gateway.95516.com``
    or ``http://127.0.0.1:8000/sandbox/acp``. ``file_transfer_url`` is the full URL of file transfer (txnType 76);
    when None it is ``{base_url}/filedownload/`` (the sandbox layout).
    """

    base_url: str
    signer: Signer | SecretKeySigner
    verifier: Verifier
    mer_id: str
    access_type: str = m.ACCESS_MERCHANT
    version: str = "5.1.0"
    encoding: str = "UTF-8"
    channel_type: str = m.CHANNEL_PC
    acq_ins_code: str | None = None
    back_url: str | None = None
    file_transfer_url: str | None = None
    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    verify_tls: bool | str = True
    query_delays: tuple[float, ...] = BACK_QUERY_DELAYS

    def context(self) -> m.MerchantContext:
        return m.MerchantContext(
            mer_id=self.mer_id,
            access_type=self.access_type,
            version=self.version,
            encoding=self.encoding,
            sign_method=self.signer.sign_method,
            channel_type=self.channel_type,
            acq_ins_code=self.acq_ins_code,
        )

    def url(self, path: str) -> str:
        return self.base_url.rstrip("/") + path

    @property
    def file_url(self) -> str:
        return self.file_transfer_url or self.base_url.rstrip("/") + "/filedownload/"


@dataclass(frozen=True)
class GatewayResponse:
    """A verified answer of the gateway. ``txn_type`` is the type of the transaction the answer is about."""

    params: Mapping[str, str]
    verification: Verification
    txn_type: str | None = None

    @property
    def resp_code(self) -> str:
        return self.params.get("respCode", "")

    @property
    def resp_msg(self) -> str:
        return self.params.get("respMsg", "")

    @property
    def classification(self) -> RespClass:
        return classify(self.resp_code, txn_type=self.txn_type)

    @property
    def orig_resp_code(self) -> str:
        return self.params.get("origRespCode", "")

    @property
    def query_id(self) -> str:
        return self.params.get("queryId", "")

    def file_content(self) -> bytes:
        """The inflated ``fileContent`` (file transfer / batch query answers)."""
        return decode_file_content(self.params.get("fileContent", ""))


@dataclass(frozen=True)
class QueryOutcome:
    """Result of the query schedule.

    ``status`` is SUCCESS or FAILURE when the network gave a final answer about the original transaction, and
    PENDING_QUERY when it is still unknown after the schedule (rely on the notification or reconciliation).
    """

    status: RespClass
    response: GatewayResponse | None
    attempts: int
    delays: tuple[float, ...] = field(default=())


@dataclass(frozen=True)
class TransactionResult:
    """A money-moving request: the synchronous answer and, when it was pending, the query outcome.

    ``status``: SUCCESS (accepted; for refunds/voids the money moves asynchronously), PENDING_QUERY, RETRY_LATER or
    FAILURE.
    """

    request: Mapping[str, str]
    response: GatewayResponse
    status: RespClass
    query: QueryOutcome | None = None


class GatewayClient:
    """Synchronous ACP back-office client. Reuse one instance (connection pool); ``close()`` it when done."""

    def __init__(
        self,
        config: GatewayConfig,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], datetime] | None = None,
        transport: httpx.BaseTransport | None = None,
        http: httpx.Client | None = None,
    ):
        """``http``: a client to borrow (a process-wide pool; not closed by ``close()``), else one is built."""
        self.config = config
        self._ctx = config.context()
        self._sleep = sleep
        self._clock = clock or (lambda: datetime.now(UTC))
        self._owns_http = http is None
        self._http = http or httpx.Client(
            timeout=httpx.Timeout(config.read_timeout, connect=config.connect_timeout),
            verify=config.verify_tls,
            transport=transport,
            follow_redirects=False,
        )

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> GatewayClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- low level -------------------------------------------------------------------------------------------------

    def send(self, url: str, params: Mapping[str, str], *, txn_type: str | None = None) -> GatewayResponse:
        """Sign ``params``, POST them to ``url`` and return the verified answer.

        Raises GatewayTimeoutError (state unknown: query), GatewayConnectionError, GatewayHTTPError or
        GatewayResponseError (malformed, unsigned, badly signed or mismatched answer).
        """
        signed = self.config.signer.sign(params)
        return self._post(url, signed, txn_type=txn_type or signed.get("txnType"))

    def _post(self, url: str, signed: Mapping[str, str], *, txn_type: str | None) -> GatewayResponse:
        encoding = signed.get("encoding", "UTF-8")
        body = encode_request(signed)
        order_id, txn_time = signed.get("orderId"), signed.get("txnTime")
        try:
            answer = self._http.post(
                url,
                content=body,
                headers={"Content-Type": f"application/x-www-form-urlencoded;charset={encoding}"},
            )
        except httpx.TimeoutException as exc:
            raise GatewayTimeoutError(
                f"no answer from the gateway within the timeout (txnType {signed.get('txnType')}, "
                f"orderId {order_id}); the transaction state is unknown, query it",
                order_id=order_id,
                txn_time=txn_time,
            ) from exc
        except httpx.TransportError as exc:
            raise GatewayConnectionError(f"cannot reach the gateway: {type(exc).__name__}") from exc
        if answer.status_code != 200:
            raise GatewayHTTPError(f"the gateway answered HTTP {answer.status_code}", status_code=answer.status_code)
        try:
            params = decode_response(answer.content, encoding)
        except ACPFormatError as exc:
            raise GatewayResponseError(f"malformed answer: {exc}") from exc
        try:
            verification = self.config.verifier.verify(params)
        except SignatureError as exc:
            raise GatewayResponseError(
                f"the answer's signature is not acceptable: {exc}", untrusted_params=_safe(params)
            ) from exc
        for key in _ECHO_FIELDS:
            if key in signed and key in params and signed[key] != params[key]:
                raise GatewayResponseError(
                    f"the answer's {key} does not match the request", untrusted_params=_safe(params)
                )
        logger.info(
            "ACP %s orderId=%s batchNo=%s respCode=%s",
            signed.get("txnType"),
            order_id,
            signed.get("batchNo"),
            params.get("respCode"),
        )
        return GatewayResponse(MappingProxyType(dict(params)), verification, txn_type)

    def _now(self) -> datetime:
        return self._clock()

    # -- queries ---------------------------------------------------------------------------------------------------

    def query(self, *, order_id: str, txn_time: datetime | str, txn_type: str | None = None) -> GatewayResponse:
        """Single status query (txnType 00) by ``orderId`` + ``txnTime`` of the original request.

        ``txn_type`` (of the original transaction) only affects the classification of ``origRespCode``.
        """
        params = m.build_query(self._ctx, order_id=order_id, txn_time=txn_time)
        return self.send(self.config.url(PATH_QUERY), params, txn_type=txn_type)

    def query_until_final(
        self,
        *,
        order_id: str,
        txn_time: datetime | str,
        txn_type: str | None = None,
        delays: Iterable[float] | None = None,
    ) -> QueryOutcome:
        """Query on the protocol's schedule until the original transaction is final.

        Before each query the client sleeps the next delay (default ``config.query_delays``: 1, 2, 4, 8, 16, 32 s).
        ``origRespCode`` 00/A6 → SUCCESS; 03/04/05 (and 01/12/34/60 for 代付) → keep querying; anything else →
        FAILURE. A query answered 34 (not found yet), 03/04/05, 02/06 or a timeout/connection error → keep querying;
        another query error (e.g. 37, too many queries) stops with PENDING_QUERY. Signature problems raise.
        """
        last: GatewayResponse | None = None
        waited: list[float] = []
        attempts = 0
        for delay in self.config.query_delays if delays is None else delays:
            self._sleep(delay)
            waited.append(delay)
            attempts += 1
            try:
                answer = self.query(order_id=order_id, txn_time=txn_time, txn_type=txn_type)
            except (GatewayTimeoutError, GatewayConnectionError, GatewayHTTPError):
                continue
            last = answer
            query_class = answer.classification
            if query_class is RespClass.SUCCESS:
                orig_class = classify(answer.orig_resp_code, txn_type=txn_type)
                if orig_class is RespClass.SUCCESS or orig_class is RespClass.FAILURE:
                    return QueryOutcome(orig_class, answer, attempts, tuple(waited))
                continue  # still in process (or retry-later codes): query again
            if answer.resp_code == "34" or query_class in (RespClass.PENDING_QUERY, RespClass.RETRY_LATER):
                continue
            return QueryOutcome(RespClass.PENDING_QUERY, answer, attempts, tuple(waited))
        return QueryOutcome(RespClass.PENDING_QUERY, last, attempts, tuple(waited))

    # -- money-moving transactions ---------------------------------------------------------------------------------

    def _money(self, params: dict[str, str], *, resolve_pending: bool, schedule: Iterable[float] | None):
        response = self.send(self.config.url(PATH_BACK), params)
        status = response.classification
        if status is RespClass.PENDING_QUERY and resolve_pending:
            outcome = self.query_until_final(
                order_id=params["orderId"], txn_time=params["txnTime"], txn_type=params["txnType"], delays=schedule
            )
            return TransactionResult(_safe(params), response, outcome.status, outcome)
        return TransactionResult(_safe(params), response, status)

    def _back_url(self, back_url: str | None) -> str:
        url = back_url or self.config.back_url
        if not url:
            raise GatewayError("no backUrl configured")
        return url

    def void(
        self,
        *,
        order_id: str,
        txn_amt: int,
        orig_qry_id: str,
        txn_time: datetime | str | None = None,
        back_url: str | None = None,
        req_reserved: str | None = None,
        resolve_pending: bool = True,
    ) -> TransactionResult:
        """消费撤销 (31): same settlement day, full amount, new ``order_id``."""
        params = m.build_void(
            self._ctx,
            order_id=order_id,
            txn_time=txn_time or self._now(),
            txn_amt=txn_amt,
            orig_qry_id=orig_qry_id,
            back_url=self._back_url(back_url),
            req_reserved=req_reserved,
        )
        return self._money(params, resolve_pending=resolve_pending, schedule=None)

    def refund(
        self,
        *,
        order_id: str,
        txn_amt: int,
        orig_qry_id: str,
        txn_time: datetime | str | None = None,
        back_url: str | None = None,
        req_reserved: str | None = None,
        resolve_pending: bool = True,
    ) -> TransactionResult:
        """退货 (04): partial or full, new ``order_id``."""
        params = m.build_refund(
            self._ctx,
            order_id=order_id,
            txn_time=txn_time or self._now(),
            txn_amt=txn_amt,
            orig_qry_id=orig_qry_id,
            back_url=self._back_url(back_url),
            req_reserved=req_reserved,
        )
        return self._money(params, resolve_pending=resolve_pending, schedule=None)

    def collect(
        self,
        *,
        order_id: str,
        txn_amt: int,
        acc_no: str,
        customer_info: Mapping[str, str] | None = None,
        acc_type: str | None = None,
        txn_time: datetime | str | None = None,
        back_url: str | None = None,
        req_reserved: str | None = None,
        resolve_pending: bool = True,
    ) -> TransactionResult:
        """代收 (11): debit ``acc_no``."""
        params = m.build_collection(
            self._ctx,
            order_id=order_id,
            txn_time=txn_time or self._now(),
            txn_amt=txn_amt,
            acc_no=acc_no,
            back_url=self._back_url(back_url),
            customer_info=customer_info,
            acc_type=acc_type,
            req_reserved=req_reserved,
        )
        return self._money(params, resolve_pending=resolve_pending, schedule=None)

    def payout(
        self,
        *,
        order_id: str,
        txn_amt: int,
        acc_no: str,
        customer_info: Mapping[str, str] | None = None,
        acc_type: str | None = None,
        txn_time: datetime | str | None = None,
        back_url: str | None = None,
        req_reserved: str | None = None,
        resolve_pending: bool = True,
        schedule: Iterable[float] | None = None,
    ) -> TransactionResult:
        """代付 (12): credit ``acc_no``. Pending answers run ``schedule`` (default ``config.query_delays``; the
        代付 demo waits 3 min first: pass ``query_schedule("payout")``)."""
        params = m.build_payout(
            self._ctx,
            order_id=order_id,
            txn_time=txn_time or self._now(),
            txn_amt=txn_amt,
            acc_no=acc_no,
            back_url=self._back_url(back_url),
            customer_info=customer_info,
            acc_type=acc_type,
            req_reserved=req_reserved,
        )
        return self._money(params, resolve_pending=resolve_pending, schedule=schedule)

    # -- batches and files -----------------------------------------------------------------------------------------

    def batch(
        self,
        *,
        txn_sub_type: str,
        batch_no: str,
        total_qty: int,
        total_amt: int,
        file_content: str,
        txn_time: datetime | str | None = None,
        back_url: str | None = None,
        req_reserved: str | None = None,
    ) -> GatewayResponse:
        """批量交易 (21). Answer 00 = accepted; 03/04/05 = query later with :meth:`batch_query` (not before ~1 h)."""
        params = m.build_batch(
            self._ctx,
            txn_sub_type=txn_sub_type,
            batch_no=batch_no,
            txn_time=txn_time or self._now(),
            total_qty=total_qty,
            total_amt=total_amt,
            file_content=file_content,
            back_url=back_url or self.config.back_url,
            req_reserved=req_reserved,
        )
        return self.send(self.config.url(PATH_BATCH), params)

    def batch_query(self, *, txn_sub_type: str, batch_no: str, txn_time: datetime | str) -> GatewayResponse:
        """批量查询 (22) by ``batchNo`` + ``txnTime`` of the batch request; the result file is in ``fileContent``."""
        params = m.build_batch_query(self._ctx, txn_sub_type=txn_sub_type, batch_no=batch_no, txn_time=txn_time)
        return self.send(self.config.url(PATH_BATCH), params)

    def file_transfer(self, *, settle_date: str, txn_time: datetime | str | None = None) -> GatewayResponse:
        """文件传输 (76/01): the reconciliation zip of ``settle_date`` (MMDD); ``respCode 98`` = not there yet."""
        params = m.build_file_transfer(self._ctx, settle_date=settle_date, txn_time=txn_time or self._now())
        return self.send(self.config.file_url, params)


_SENSITIVE = frozenset({"accNo", "customerInfo", "fileContent", "signPubKeyCert"})


def _safe(params: Mapping[str, str]) -> MappingProxyType[str, str]:
    """``params`` without card data or bulky fields, for results and errors that may end up in logs."""
    return MappingProxyType({key: value for key, value in params.items() if key not in _SENSITIVE})
