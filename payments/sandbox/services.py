"""What the sandbox acquirer does with each ACP request, and its notifications.

The sandbox plays the card network: it answers the portal's signed requests (back-office transactions, queries,
batches, file transfer) with signed answers, applies :mod:`.outcomes`, enforces the refund and void rules and cuts
settlement days with :mod:`payments.settlement`. Its rows are the network's records, not the portal's, so they are
not audited; the portal audits what it receives.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import Mapping
from datetime import date, datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from payments.cards import card_hash, mask_pan
from payments.gateway.acp.filecontent import decode_file_text, encode_file_content, encode_file_text
from payments.gateway.acp.messages import BEIJING, format_txn_time, parse_txn_time
from payments.gateway.acp.signing import Signer, Verifier
from payments.gateway.acp.testing import CaFiles
from payments.gateway.config import _cached, ensure_sandbox_material, portal_signer
from payments.settlement import settlement_date_for

from . import outcomes
from .models import SandboxBatch, SandboxStatus, SandboxTransaction
from .outcomes import NOTIFY_SCHEDULE_MINUTES, REFUND_WINDOW_DAYS, Outcome, resp_msg

logger = logging.getLogger(__name__)

MONEY_TYPES = {"04", "11", "12", "31"}
_ECHO = (
    "version",
    "encoding",
    "signMethod",
    "txnType",
    "txnSubType",
    "bizType",
    "accessType",
    "merId",
    "orderId",
    "txnTime",
    "batchNo",
    "settleDate",
    "acqInsCode",
)


class RequestRefused(Exception):
    """The request is answered with ``code`` and changes nothing."""

    def __init__(self, code: str):
        super().__init__(code)
        self.code = code


# --- keys -----------------------------------------------------------------------------------------------------------


def sandbox_files() -> CaFiles:
    directory = Path(settings.SANDBOX_DIR)
    files = CaFiles.in_directory(directory)
    if not files.exists() or not (directory / "portal_sign.crt").is_file():
        ensure_sandbox_material(directory)
    return files


def sandbox_signer() -> Signer:
    """The network's signing key (``sign.key``), used for every answer and notification."""
    files = sandbox_files()
    return _cached(("sandbox-signer", str(files.sign_key), files.sign_key.stat().st_mtime), files.signer)


def sandbox_verifier() -> Verifier:
    """Verifies the portal's requests: the portal's signing certificate is known by ``certId`` (5.0.0 and 5.1.0)."""
    sandbox_files()
    cert = portal_signer().certificate
    return _cached(
        ("sandbox-verifier", cert.serial_number),
        lambda: Verifier(verify_certs=[cert], accept_cert_id_for_510=True),
    )


def sign(params: Mapping[str, str]) -> dict[str, str]:
    """Sign an answer or notification like the network: 5.1.0 carries ``signPubKeyCert``."""
    return sandbox_signer().sign(params, include_cert=params.get("version") == "5.1.0")


# --- helpers --------------------------------------------------------------------------------------------------------


def new_query_id(when: datetime, seed: str | None = None) -> str:
    """A 21-digit queryId: Beijing time to the second, then 7 digits (random, or derived from ``seed``)."""
    prefix = when.astimezone(BEIJING).strftime("%Y%m%d%H%M%S")
    if seed is None:
        tail = secrets.randbelow(10**7)
    else:
        tail = int(hashlib.sha256(seed.encode()).hexdigest(), 16) % 10**7
    return f"{prefix}{tail:07d}"


def trace_fields(when: datetime, seed: str | None = None) -> tuple[str, str]:
    number = secrets.randbelow(10**6) if seed is None else int(hashlib.sha256(seed.encode()).hexdigest()[:8], 16)
    return f"{number % 10**6:06d}", when.astimezone(BEIJING).strftime("%m%d%H%M%S")


def mmdd(day: date) -> str:
    return day.strftime("%m%d")


def answer(request: Mapping[str, str], code: str, **extra: str) -> dict[str, str]:
    """The signed synchronous answer to ``request``: its identifying fields echoed, ``respCode``/``respMsg``."""
    fields = {key: request[key] for key in _ECHO if request.get(key)}
    fields.setdefault("version", "5.1.0")
    fields.setdefault("encoding", "UTF-8")
    fields["signMethod"] = "01"
    fields.update(respCode=code, respMsg=resp_msg(code))
    fields.update({key: value for key, value in extra.items() if value})
    return sign(fields)


def _required(params: Mapping[str, str], *names: str) -> None:
    if any(not (params.get(name) or "").strip() for name in names):
        raise RequestRefused("13")


def _amount(params: Mapping[str, str]) -> int:
    value = params.get("txnAmt", "")
    if not value.isdigit() or int(value) <= 0:
        raise RequestRefused("10")
    return int(value)


def _txn_time(params: Mapping[str, str]) -> datetime:
    try:
        return parse_txn_time(params.get("txnTime", ""))
    except ValueError as exc:
        raise RequestRefused("10") from exc


def resolve_due(txn: SandboxTransaction, now: datetime | None = None) -> SandboxTransaction:
    """A pending transaction whose time has come succeeds (compare-and-set)."""
    now = now or timezone.now()
    if txn.status == SandboxStatus.PENDING and txn.resolve_at and txn.resolve_at <= now:
        SandboxTransaction.objects.filter(pk=txn.pk, status=SandboxStatus.PENDING).update(
            status=SandboxStatus.SUCCESS, resp_code="00"
        )
        txn.refresh_from_db()
    return txn


# --- back-office transactions (backTransReq.do) -----------------------------------------------------------------


def handle_back(params: Mapping[str, str]) -> dict[str, str]:
    """Refund 04, void 31, collection 11, payout 12: check, record, answer; notify after commit."""
    try:
        _required(params, "txnType", "merId", "orderId", "txnTime", "txnAmt")
        txn_type = params["txnType"]
        if txn_type not in MONEY_TYPES:
            raise RequestRefused("15")
        txn, outcome = _record_money(params, back_url=params.get("backUrl", ""))
    except RequestRefused as refused:
        return answer(params, refused.code)
    return answer(params, outcome.sync_code, queryId=txn.query_id)


def _record_money(
    params: Mapping[str, str], *, back_url: str, batch: SandboxBatch | None = None
) -> tuple[SandboxTransaction, Outcome]:
    txn_type = params["txnType"]
    amount = _amount(params)
    txn_time = _txn_time(params)
    now = timezone.now()
    mer_id = params["merId"]
    with transaction.atomic():
        if SandboxTransaction.objects.filter(mer_id=mer_id, order_id=params["orderId"]).exists():
            raise RequestRefused("12")
        orig = None
        card_masked = card_digest = card_type = ""
        if txn_type in ("04", "31"):
            _required(params, "origQryId")
            orig = _check_reversal(params, txn_type=txn_type, amount=amount, now=now)
            outcome = outcomes.decide(amount=amount)
            card_masked, card_digest, card_type = orig.card_masked, orig.card_hash, orig.card_type
        else:
            _required(params, "accNo")
            pan = params["accNo"].strip()
            outcome = outcomes.decide(amount=amount, card_number=pan)
            if outcome.refused:
                raise RequestRefused(outcome.sync_code)
            card_masked, card_digest, card_type = mask_pan(pan), card_hash(pan), "01"
        trace_no, trace_time = trace_fields(now)
        try:
            txn = SandboxTransaction.objects.create(
                mer_id=mer_id,
                order_id=params["orderId"],
                txn_time=txn_time,
                txn_type=txn_type,
                txn_sub_type=params.get("txnSubType") or "00",
                biz_type=params.get("bizType") or "000201",
                channel_type=params.get("channelType") or "07",
                access_type=params.get("accessType") or "0",
                amount=amount,
                currency=params.get("currencyCode") or "156",
                status=outcome.status,
                resp_code=outcome.resp_code,
                query_id=_unique_query_id(now),
                orig_query_id=params.get("origQryId", ""),
                settle_date=settlement_date_for(now),
                trace_no=trace_no,
                trace_time=trace_time,
                card_masked=card_masked,
                card_hash=card_digest,
                card_type=card_type,
                req_reserved=params.get("reqReserved", "")[:1024],
                resolve_at=now + timedelta(seconds=settings.SANDBOX_PENDING_SECONDS)
                if outcome.status == SandboxStatus.PENDING
                else None,
                batch=batch,
                back_url=back_url,
            )
        except IntegrityError as exc:
            raise RequestRefused("12") from exc
        if orig is not None and outcome.status != SandboxStatus.FAILED:
            # Reserve the amount now: a pending reversal always ends in success in the sandbox.
            SandboxTransaction.objects.filter(pk=orig.pk).update(refunded_amount=F("refunded_amount") + amount)
        if back_url:
            transaction.on_commit(lambda: schedule_notification(txn.pk))
    return txn, outcome


def _unique_query_id(now: datetime) -> str:
    for _attempt in range(5):
        query_id = new_query_id(now)
        if not SandboxTransaction.objects.filter(query_id=query_id).exists():
            return query_id
    raise RequestRefused("06")


def _check_reversal(params: Mapping[str, str], *, txn_type: str, amount: int, now: datetime) -> SandboxTransaction:
    """The refund / void rules of formats.md §9 against the original payment (locked)."""
    orig = (
        SandboxTransaction.objects.select_for_update()
        .filter(query_id=params["origQryId"], mer_id=params["merId"], txn_type__in=("01", "11"))
        .first()
    )
    if orig is None:
        raise RequestRefused("35")
    orig = resolve_due(orig, now)
    if orig.status != SandboxStatus.SUCCESS:
        raise RequestRefused("35")
    remaining = orig.amount - orig.refunded_amount
    if txn_type == "31":
        if orig.refunded_amount:
            raise RequestRefused("45")
        if amount != orig.amount:
            raise RequestRefused("36")
        if settlement_date_for(now) != orig.settle_date:
            raise RequestRefused("39")
    else:
        if remaining <= 0:
            raise RequestRefused("45")
        if amount > remaining:
            raise RequestRefused("36")
        if now - orig.txn_time > timedelta(days=REFUND_WINDOW_DAYS):
            raise RequestRefused("39")
    return orig


# --- query (queryTrans.do) --------------------------------------------------------------------------------------


def handle_query(params: Mapping[str, str]) -> dict[str, str]:
    """Status query (txnType 00) by merId + orderId + txnTime."""
    try:
        _required(params, "merId", "orderId", "txnTime")
        if params.get("txnType") != "00":
            raise RequestRefused("15")
        txn_time = _txn_time(params)
    except RequestRefused as refused:
        return answer(params, refused.code)
    txn = SandboxTransaction.objects.filter(
        mer_id=params["merId"], order_id=params["orderId"], txn_time=txn_time
    ).first()
    if txn is None:
        return answer(params, "34")
    txn = resolve_due(txn)
    return answer(params, "00", **transaction_fields(txn, include_card=False), **_orig_result(txn))


def _orig_result(txn: SandboxTransaction) -> dict[str, str]:
    return {"origRespCode": txn.resp_code, "origRespMsg": resp_msg(txn.resp_code)}


def transaction_fields(txn: SandboxTransaction, *, include_card: bool = True) -> dict[str, str]:
    """The result fields of a transaction as notifications and queries carry them (formats.md §4)."""
    fields = {
        "queryId": txn.query_id,
        "txnAmt": str(txn.amount),
        "currencyCode": txn.currency,
        "settleAmt": str(txn.amount),
        "settleCurrencyCode": txn.currency,
        "settleDate": mmdd(txn.settle_date),
        "traceNo": txn.trace_no,
        "traceTime": txn.trace_time,
        "origQryId": txn.orig_query_id,
        "reqReserved": txn.req_reserved,
    }
    if include_card and txn.card_masked:
        fields.update(accNo=txn.card_masked, payCardType=txn.card_type, payType="0001")
    return {key: value for key, value in fields.items() if value}


# --- notifications -------------------------------------------------------------------------------------------------


def notification(txn: SandboxTransaction, *, card_number: str | None = None) -> dict[str, str]:
    """The signed notification of ``txn``. ``accNo`` is the full number only when the caller still holds it (the
    sandbox keeps none), else the masked one, as the network sends it to merchants without the encryption option."""
    fields = {
        "version": "5.1.0",
        "encoding": "UTF-8",
        "signMethod": "01",
        "txnType": txn.txn_type,
        "txnSubType": txn.txn_sub_type,
        "bizType": txn.biz_type,
        "accessType": txn.access_type,
        "channelType": txn.channel_type,
        "merId": txn.mer_id,
        "orderId": txn.order_id,
        "txnTime": format_txn_time(txn.txn_time),
        "respCode": txn.resp_code,
        "respMsg": resp_msg(txn.resp_code),
        **transaction_fields(txn),
    }
    if card_number:
        fields["accNo"] = card_number
    return sign(fields)


def notify_delay_seconds(attempt: int) -> float | None:
    """Seconds to wait before attempt number ``attempt`` (0-based), or None when the schedule is over."""
    if attempt >= len(NOTIFY_SCHEDULE_MINUTES):
        return None
    return NOTIFY_SCHEDULE_MINUTES[attempt] * 60 * settings.SANDBOX_NOTIFY_TIME_SCALE


def schedule_notification(txn_id: int) -> None:
    """Enqueue the first notification attempt (at ``resolve_at`` for a pending transaction)."""
    from .tasks import sandbox_notify

    txn = SandboxTransaction.objects.get(pk=txn_id)
    delay = 0.0
    if txn.status == SandboxStatus.PENDING and txn.resolve_at:
        delay = max(0.0, (txn.resolve_at - timezone.now()).total_seconds())
    SandboxTransaction.objects.filter(pk=txn_id, delivered_at__isnull=True).update(
        next_attempt_at=timezone.now() + timedelta(seconds=delay)
    )
    if delay and settings.CELERY_TASK_ALWAYS_EAGER:
        return  # an eager run cannot wait: the due-notification sweep sends it later
    sandbox_notify.apply_async(args=(txn_id,), countdown=delay)


def sandbox_notify_attempt(txn_id: int, *, http=None, card_number: str | None = None) -> float | None:
    """Make one notification attempt for ``txn_id`` if one is due; return the delay before the next attempt (None:
    delivered, nothing due, or the schedule is over).

    The attempt is claimed with a compare-and-set on the attempt counter, so a task run twice sends once.
    """

    now = timezone.now()
    txn = SandboxTransaction.objects.filter(pk=txn_id).first()
    if txn is None or txn.delivered_at is not None or not txn.back_url:
        return None
    txn = resolve_due(txn, now)
    if txn.status == SandboxStatus.PENDING:
        return max(0.0, (txn.resolve_at - now).total_seconds()) if txn.resolve_at else None
    if txn.next_attempt_at and txn.next_attempt_at > now:
        return (txn.next_attempt_at - now).total_seconds()
    if notify_delay_seconds(txn.notify_attempts) is None:
        return None
    claimed = SandboxTransaction.objects.filter(
        pk=txn.pk, notify_attempts=txn.notify_attempts, delivered_at__isnull=True
    ).update(notify_attempts=F("notify_attempts") + 1, next_attempt_at=None)
    if not claimed:
        return None
    attempt = txn.notify_attempts + 1
    delivered = deliver(txn, http=http, card_number=card_number)
    if delivered:
        SandboxTransaction.objects.filter(pk=txn.pk).update(delivered_at=timezone.now())
        return None
    delay = notify_delay_seconds(attempt)
    if delay is None:
        logger.warning("sandbox: notification of %s given up after %s attempts", txn.order_id, attempt)
        return None
    SandboxTransaction.objects.filter(pk=txn.pk).update(next_attempt_at=timezone.now() + timedelta(seconds=delay))
    return delay


def deliver(txn: SandboxTransaction, *, http=None, card_number: str | None = None) -> bool:
    """POST the notification of ``txn`` to its ``back_url``; True on HTTP 200 or 302 (the network's rule)."""
    import httpx

    from payments.gateway.acp.codec import encode_request
    from portal.core.http import shared_client

    body = encode_request(notification(txn, card_number=card_number))
    headers = {"Content-Type": "application/x-www-form-urlencoded;charset=UTF-8"}
    client = http or shared_client(timeout=10.0)
    try:
        response = client.post(txn.back_url, content=body, headers=headers)
    except httpx.HTTPError as exc:
        logger.info("sandbox: notification of %s failed: %s", txn.order_id, type(exc).__name__)
        return False
    return response.status_code in (200, 302)


def due_notifications(now: datetime | None = None) -> list[int]:
    """Ids of undelivered notifications whose next attempt is due."""
    now = now or timezone.now()
    return list(
        SandboxTransaction.objects.filter(delivered_at__isnull=True, next_attempt_at__lte=now)
        .exclude(back_url="")
        .values_list("pk", flat=True)[:500]
    )


# --- batches (batchTrans.do) ---------------------------------------------------------------------------------------


def handle_batch(params: Mapping[str, str]) -> dict[str, str]:
    """Batch request (21): parse the file, process each line as a single transaction, keep the result file.
    Batch query (22): return the result file in ``fileContent``."""
    try:
        _required(params, "txnType", "txnSubType", "merId", "batchNo", "txnTime")
        if params["txnType"] == "21":
            return _batch_submit(params)
        if params["txnType"] == "22":
            return _batch_query(params)
        raise RequestRefused("15")
    except RequestRefused as refused:
        return answer(params, refused.code)


_SUB_TYPE_TXN = {"01": "04", "02": "11", "03": "12"}
_RESULT_COLUMNS = ("respCode", "respMsg", "queryId", "sysTraNo", "sysTm", "settleDate")


def _batch_submit(params: Mapping[str, str]) -> dict[str, str]:
    _required(params, "totalQty", "totalAmt", "fileContent")
    txn_type = _SUB_TYPE_TXN.get(params["txnSubType"])
    if txn_type is None:
        raise RequestRefused("15")
    encoding = params.get("encoding") or "UTF-8"
    try:
        text = decode_file_text(params["fileContent"], encoding)
    except ValueError as exc:
        raise RequestRefused("14") from exc
    lines = [line for line in text.lstrip("\ufeff").splitlines() if line.strip()]
    if len(lines) < 3:
        raise RequestRefused("14")
    header, columns, rows = lines[0].split("|"), lines[1].split("|"), [line.split("|") for line in lines[2:]]
    try:
        total_amt, total_qty = int(header[1]), int(header[2])
    except (IndexError, ValueError) as exc:
        raise RequestRefused("14") from exc
    amounts = [row[columns.index("txnAmt")] if "txnAmt" in columns and len(row) == len(columns) else "" for row in rows]
    if (
        "orderId" not in columns
        or any(not amount.isdigit() for amount in amounts)
        or total_qty != len(rows)
        or total_amt != sum(int(amount) for amount in amounts)
        or str(total_qty) != params["totalQty"]
        or str(total_amt) != params["totalAmt"]
    ):
        raise RequestRefused("14")
    txn_time = _txn_time(params)
    try:
        with transaction.atomic():
            batch = SandboxBatch.objects.create(
                mer_id=params["merId"],
                batch_no=params["batchNo"],
                batch_date=txn_time.date(),
                txn_time=params["txnTime"],
                txn_sub_type=params["txnSubType"],
                biz_type=params.get("bizType", ""),
                total_qty=total_qty,
                total_amt=total_amt,
                encoding=encoding,
            )
    except IntegrityError as exc:
        raise RequestRefused("12") from exc
    result_rows = []
    success_amt = success_qty = 0
    for row in rows:
        line = dict(zip(columns, row, strict=True))
        line_params = {
            **{key: value for key, value in params.items() if key in ("merId", "accessType", "bizType")},
            **{key: value.strip() for key, value in line.items() if value.strip()},
            "txnType": txn_type,
            "txnSubType": "00",
            "txnTime": params["txnTime"],
        }
        try:
            _required(line_params, "orderId", "txnAmt")
            txn, outcome = _record_money(line_params, back_url="", batch=batch)
            code = txn.resp_code if txn.status != SandboxStatus.PENDING else "05"
            extra = [txn.query_id, txn.trace_no, txn.trace_time, mmdd(txn.settle_date)]
            if txn.status == SandboxStatus.SUCCESS:
                success_amt, success_qty = success_amt + txn.amount, success_qty + 1
        except RequestRefused as refused:
            code, extra = refused.code, ["", "", "", ""]
        if "accNo" in line and line["accNo"]:
            line["accNo"] = _mask_any(line["accNo"])
        result_rows.append([line.get(column, "") for column in columns] + [code, resp_msg(code), *extra])
    result_header = [header[0], str(total_amt), str(total_qty), *(header[3:5] + ["", ""])[:2]]
    result = [
        "|".join(result_header + [str(success_amt), str(success_qty), "", ""]),
        "|".join(list(columns) + list(_RESULT_COLUMNS)),
        *("|".join(row) for row in result_rows),
    ]
    SandboxBatch.objects.filter(pk=batch.pk).update(result_text="\r\n".join(result) + "\r\n")
    return answer(params, "00")


def _mask_any(value: str) -> str:
    value = value.strip()
    return mask_pan(value) if value.isdigit() and len(value) >= 13 else value


def _batch_query(params: Mapping[str, str]) -> dict[str, str]:
    batch = SandboxBatch.objects.filter(
        mer_id=params["merId"], batch_no=params["batchNo"], txn_time=params["txnTime"]
    ).first()
    if batch is None:
        raise RequestRefused("34")
    content = encode_file_text(batch.result_text, batch.encoding)
    return answer(params, "00", fileContent=content)


# --- file transfer (filedownload/) ----------------------------------------------------------------------------------


def settle_year_date(settle_mmdd: str, today: date) -> date | None:
    """The date of MMDD nearest to ``today`` (the protocol carries no year)."""
    candidates = []
    for year in (today.year - 1, today.year, today.year + 1):
        try:
            candidates.append(date(year, int(settle_mmdd[:2]), int(settle_mmdd[2:])))
        except ValueError:
            continue
    return min(candidates, key=lambda day: abs(day - today)) if candidates else None


#: Set by reconciliation.upstream (its AppConfig.ready): ``(merId, settle date) -> Path | None`` builds a missing
#: ``files/{merId}_{YYYYMMDD}.zip`` from the sandbox's own transactions once the day is over.
UPSTREAM_FILE_BUILDER = None


def handle_file_transfer(params: Mapping[str, str]) -> dict[str, str]:
    """File transfer (76): ``files/{merId}_{YYYYMMDD}.zip`` in the sandbox directory, else ``98`` 文件不存在."""
    try:
        _required(params, "merId", "settleDate", "txnTime")
        if params.get("txnType") != "76" or not params["merId"].isalnum():
            raise RequestRefused("15")
        settle_mmdd = params["settleDate"]
        if len(settle_mmdd) != 4 or not settle_mmdd.isdigit():
            raise RequestRefused("10")
    except RequestRefused as refused:
        return answer(params, refused.code)
    day = settle_year_date(settle_mmdd, timezone.now().astimezone(BEIJING).date())
    path = Path(settings.SANDBOX_DIR) / "files" / f"{params['merId']}_{day:%Y%m%d}.zip" if day else None
    if path is not None and not path.is_file() and UPSTREAM_FILE_BUILDER is not None:
        path = UPSTREAM_FILE_BUILDER(params["merId"], day)  # built from the sandbox's own transactions
    if path is None or not path.is_file():
        return answer(params, "98")
    return answer(
        params,
        "00",
        fileType=params.get("fileType", "00"),
        fileName=path.name,
        fileContent=encode_file_content(path.read_bytes()),
    )
