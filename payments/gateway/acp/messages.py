"""Builders for the back-office ACP requests (formats.md §2): plain ``dict[str, str]`` with the protocol's field names,
ready for :meth:`Signer.sign`.

Builders validate what the protocol checks (order id format, positive fen amount, MMDD dates, ``txnTime`` in Beijing
time) and raise :class:`ACPRequestError`. Card data (``accNo``, ``customerInfo``) is passed through untouched and must
never be logged by callers.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from .codec import encode_reserved, normalise_encoding
from .errors import ACPFormatError, ACPRequestError
from .signing import SIGN_METHOD_RSA, VERSIONS

BEIJING = ZoneInfo("Asia/Shanghai")
TXN_TIME_FORMAT = "%Y%m%d%H%M%S"
CURRENCY_CNY = "156"

# txnType (formats.md §2.2)
TXN_QUERY = "00"
TXN_CONSUME = "01"
TXN_REFUND = "04"
TXN_COLLECTION = "11"
TXN_PAYOUT = "12"
TXN_BATCH = "21"
TXN_BATCH_QUERY = "22"
TXN_VOID = "31"
TXN_FILE_TRANSFER = "76"

# bizType
BIZ_DEFAULT = "000000"
BIZ_GATEWAY_B2C = "000201"
BIZ_PAYOUT = "000401"
BIZ_COLLECTION = "000501"

# batch txnSubType (txnType 21/22)
BATCH_REFUND = "01"
BATCH_COLLECTION = "02"
BATCH_PAYOUT = "03"
_BATCH_BIZ_TYPE = {BATCH_REFUND: BIZ_GATEWAY_B2C, BATCH_COLLECTION: BIZ_COLLECTION, BATCH_PAYOUT: BIZ_PAYOUT}

ACCESS_MERCHANT = "0"
ACCESS_ACQUIRER = "1"
ACCESS_PLATFORM = "2"
CHANNEL_PC = "07"
CHANNEL_MOBILE = "08"
FILE_TYPE_RECONCILIATION = "00"

_ORDER_ID_RE = re.compile(r"[0-9A-Za-z]{8,40}")
_MER_ID_RE = re.compile(r"[0-9A-Za-z]{15}")
_QUERY_ID_RE = re.compile(r"[0-9A-Za-z]{1,21}")
_BATCH_NO_RE = re.compile(r"\d{4}")
_MMDD_RE = re.compile(r"(0[1-9]|1[0-2])(0[1-9]|[12]\d|3[01])")
_TXN_TIME_RE = re.compile(r"\d{14}")


@dataclass(frozen=True)
class MerchantContext:
    """The fields every request of one merchant (or acquirer acting for it) carries."""

    mer_id: str
    access_type: str = ACCESS_MERCHANT
    version: str = "5.1.0"
    encoding: str = "UTF-8"
    sign_method: str = SIGN_METHOD_RSA
    channel_type: str = CHANNEL_PC
    acq_ins_code: str | None = None  # required by the network when access_type is 1 (收单机构接入)

    def __post_init__(self) -> None:
        if not _MER_ID_RE.fullmatch(self.mer_id or ""):
            raise ACPRequestError("merId must be 15 letters or digits")
        if self.access_type not in (ACCESS_MERCHANT, ACCESS_ACQUIRER, ACCESS_PLATFORM):
            raise ACPRequestError("accessType must be 0, 1 or 2")
        if self.version not in VERSIONS:
            raise ACPRequestError("version must be 5.0.0 or 5.1.0")
        try:
            object.__setattr__(self, "encoding", normalise_encoding(self.encoding))
        except ACPFormatError as exc:
            raise ACPRequestError(str(exc)) from exc

    def common(self, *, txn_type: str, txn_sub_type: str, biz_type: str, txn_time: str) -> dict[str, str]:
        fields = {
            "version": self.version,
            "encoding": self.encoding,
            "signMethod": self.sign_method,
            "txnType": txn_type,
            "txnSubType": txn_sub_type,
            "bizType": biz_type,
            "accessType": self.access_type,
            "merId": self.mer_id,
            "txnTime": txn_time,
        }
        if self.acq_ins_code:
            fields["acqInsCode"] = self.acq_ins_code
        return fields


def format_txn_time(value: datetime | str) -> str:
    """``txnTime``: an aware datetime rendered in Beijing time as YYYYMMDDhhmmss (a valid string passes through)."""
    if isinstance(value, str):
        try:
            parse_txn_time(value)
        except ACPFormatError as exc:
            raise ACPRequestError(str(exc)) from exc
        return value
    if value.tzinfo is None:
        raise ACPRequestError("txnTime needs an aware datetime")
    return value.astimezone(BEIJING).strftime(TXN_TIME_FORMAT)


def parse_txn_time(value: str) -> datetime:
    """Parse an ACP ``txnTime`` (Beijing time) into an aware datetime."""
    if not isinstance(value, str) or not _TXN_TIME_RE.fullmatch(value):
        raise ACPFormatError("txnTime must be YYYYMMDDhhmmss")
    try:
        return datetime.strptime(value, TXN_TIME_FORMAT).replace(tzinfo=BEIJING)
    except ValueError as exc:
        raise ACPFormatError("txnTime is not a valid date and time") from exc


def encode_customer_info(fields: Mapping[str, str], encoding: str = "UTF-8") -> str:
    """``customerInfo`` without sensitive-field encryption: ``Base64("{k=v&k=v}")`` (formats.md §3.6)."""
    try:
        return base64.b64encode(encode_reserved(fields).encode(normalise_encoding(encoding))).decode("ascii")
    except UnicodeEncodeError as exc:
        raise ACPRequestError(f"customerInfo cannot be written in {encoding}") from exc


def _order_id(value: str) -> str:
    if not isinstance(value, str) or not _ORDER_ID_RE.fullmatch(value):
        raise ACPRequestError("orderId must be 8-40 letters or digits")
    return value


def _amount(value: int) -> str:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ACPRequestError("txnAmt must be a positive integer of fen")
    return str(value)


def _query_id(value: str) -> str:
    if not isinstance(value, str) or not _QUERY_ID_RE.fullmatch(value):
        raise ACPRequestError("origQryId must be the original queryId")
    return value


def _optional(fields: dict[str, str], **values: str | None) -> dict[str, str]:
    for key, value in values.items():
        if value is not None and value != "":
            fields[key] = value
    return fields


def build_void(
    ctx: MerchantContext,
    *,
    order_id: str,
    txn_time: datetime | str,
    txn_amt: int,
    orig_qry_id: str,
    back_url: str,
    currency_code: str = CURRENCY_CNY,
    req_reserved: str | None = None,
) -> dict[str, str]:
    """消费撤销 (txnType 31/00): a new ``orderId``, the full original amount, ``origQryId`` of the consumption."""
    fields = ctx.common(
        txn_type=TXN_VOID, txn_sub_type="00", biz_type=BIZ_GATEWAY_B2C, txn_time=format_txn_time(txn_time)
    )
    fields.update(
        channelType=ctx.channel_type,
        orderId=_order_id(order_id),
        txnAmt=_amount(txn_amt),
        currencyCode=currency_code,
        origQryId=_query_id(orig_qry_id),
        backUrl=back_url,
    )
    return _optional(fields, reqReserved=req_reserved)


def build_refund(
    ctx: MerchantContext,
    *,
    order_id: str,
    txn_time: datetime | str,
    txn_amt: int,
    orig_qry_id: str,
    back_url: str,
    currency_code: str = CURRENCY_CNY,
    req_reserved: str | None = None,
) -> dict[str, str]:
    """退货 (txnType 04/00): a new ``orderId``, amount ≤ what is still refundable, ``origQryId`` of the consumption."""
    fields = ctx.common(
        txn_type=TXN_REFUND, txn_sub_type="00", biz_type=BIZ_GATEWAY_B2C, txn_time=format_txn_time(txn_time)
    )
    fields.update(
        channelType=ctx.channel_type,
        orderId=_order_id(order_id),
        txnAmt=_amount(txn_amt),
        currencyCode=currency_code,
        origQryId=_query_id(orig_qry_id),
        backUrl=back_url,
    )
    return _optional(fields, reqReserved=req_reserved)


def build_query(
    ctx: MerchantContext, *, order_id: str, txn_time: datetime | str, biz_type: str = BIZ_DEFAULT
) -> dict[str, str]:
    """查询 (txnType 00/00) of the transaction identified by (``orderId``, ``txnTime``) of the original request."""
    fields = ctx.common(txn_type=TXN_QUERY, txn_sub_type="00", biz_type=biz_type, txn_time=format_txn_time(txn_time))
    fields["orderId"] = _order_id(order_id)
    return fields


def _card_txn(
    ctx: MerchantContext,
    *,
    txn_type: str,
    biz_type: str,
    order_id: str,
    txn_time: datetime | str,
    txn_amt: int,
    acc_no: str,
    back_url: str,
    customer_info: Mapping[str, str] | None,
    acc_type: str | None,
    currency_code: str,
    req_reserved: str | None,
) -> dict[str, str]:
    if not isinstance(acc_no, str) or not re.fullmatch(r"\d{1,50}", acc_no):
        raise ACPRequestError("accNo must be 1-50 digits")
    fields = ctx.common(txn_type=txn_type, txn_sub_type="00", biz_type=biz_type, txn_time=format_txn_time(txn_time))
    fields.update(
        channelType=ctx.channel_type,
        orderId=_order_id(order_id),
        txnAmt=_amount(txn_amt),
        currencyCode=currency_code,
        accNo=acc_no,
        backUrl=back_url,
    )
    info = encode_customer_info(customer_info, ctx.encoding) if customer_info else None
    return _optional(fields, accType=acc_type, customerInfo=info, reqReserved=req_reserved)


def build_collection(
    ctx: MerchantContext,
    *,
    order_id: str,
    txn_time: datetime | str,
    txn_amt: int,
    acc_no: str,
    back_url: str,
    customer_info: Mapping[str, str] | None = None,
    acc_type: str | None = None,
    currency_code: str = CURRENCY_CNY,
    req_reserved: str | None = None,
) -> dict[str, str]:
    """代收 (txnType 11/00, bizType 000501): debit the card ``acc_no`` (``customerInfo`` = certifTp, certifId,
    customerNm ...)."""
    return _card_txn(
        ctx,
        txn_type=TXN_COLLECTION,
        biz_type=BIZ_COLLECTION,
        order_id=order_id,
        txn_time=txn_time,
        txn_amt=txn_amt,
        acc_no=acc_no,
        back_url=back_url,
        customer_info=customer_info,
        acc_type=acc_type,
        currency_code=currency_code,
        req_reserved=req_reserved,
    )


def build_payout(
    ctx: MerchantContext,
    *,
    order_id: str,
    txn_time: datetime | str,
    txn_amt: int,
    acc_no: str,
    back_url: str,
    customer_info: Mapping[str, str] | None = None,
    acc_type: str | None = None,
    currency_code: str = CURRENCY_CNY,
    req_reserved: str | None = None,
) -> dict[str, str]:
    """代付 (txnType 12/00, bizType 000401): credit the card ``acc_no``."""
    return _card_txn(
        ctx,
        txn_type=TXN_PAYOUT,
        biz_type=BIZ_PAYOUT,
        order_id=order_id,
        txn_time=txn_time,
        txn_amt=txn_amt,
        acc_no=acc_no,
        back_url=back_url,
        customer_info=customer_info,
        acc_type=acc_type,
        currency_code=currency_code,
        req_reserved=req_reserved,
    )


def _batch_sub_type(value: str) -> str:
    if value not in _BATCH_BIZ_TYPE:
        raise ACPRequestError("batch txnSubType must be 01 (refund), 02 (collection) or 03 (payout)")
    return value


def _batch_no(value: str) -> str:
    if not isinstance(value, str) or not _BATCH_NO_RE.fullmatch(value) or value == "0000":
        raise ACPRequestError("batchNo must be 0001-9999")
    return value


def build_batch(
    ctx: MerchantContext,
    *,
    txn_sub_type: str,
    batch_no: str,
    txn_time: datetime | str,
    total_qty: int,
    total_amt: int,
    file_content: str,
    biz_type: str | None = None,
    back_url: str | None = None,
    req_reserved: str | None = None,
) -> dict[str, str]:
    """批量交易 (txnType 21): ``fileContent`` from :func:`encode_file_text`; totals must equal the file header."""
    sub_type = _batch_sub_type(txn_sub_type)
    fields = ctx.common(
        txn_type=TXN_BATCH,
        txn_sub_type=sub_type,
        biz_type=biz_type or _BATCH_BIZ_TYPE[sub_type],
        txn_time=format_txn_time(txn_time),
    )
    if isinstance(total_qty, bool) or not isinstance(total_qty, int) or total_qty <= 0:
        raise ACPRequestError("totalQty must be a positive integer")
    fields.update(
        channelType=ctx.channel_type,
        batchNo=_batch_no(batch_no),
        totalQty=str(total_qty),
        totalAmt=_amount(total_amt),
        fileContent=file_content,
    )
    return _optional(fields, backUrl=back_url, reqReserved=req_reserved)


def build_batch_query(
    ctx: MerchantContext,
    *,
    txn_sub_type: str,
    batch_no: str,
    txn_time: datetime | str,
    biz_type: str | None = None,
) -> dict[str, str]:
    """批量查询 (txnType 22) by ``batchNo`` + ``txnTime`` of the original batch request."""
    sub_type = _batch_sub_type(txn_sub_type)
    fields = ctx.common(
        txn_type=TXN_BATCH_QUERY,
        txn_sub_type=sub_type,
        biz_type=biz_type or _BATCH_BIZ_TYPE[sub_type],
        txn_time=format_txn_time(txn_time),
    )
    fields.update(channelType=ctx.channel_type, batchNo=_batch_no(batch_no))
    return fields


def build_file_transfer(
    ctx: MerchantContext, *, settle_date: str, txn_time: datetime | str, file_type: str = FILE_TYPE_RECONCILIATION
) -> dict[str, str]:
    """文件传输 (txnType 76/01, bizType 000000): the reconciliation file of ``settle_date`` (MMDD)."""
    if not isinstance(settle_date, str) or not _MMDD_RE.fullmatch(settle_date):
        raise ACPRequestError("settleDate must be MMDD")
    fields = ctx.common(
        txn_type=TXN_FILE_TRANSFER, txn_sub_type="01", biz_type=BIZ_DEFAULT, txn_time=format_txn_time(txn_time)
    )
    fields.update(settleDate=settle_date, fileType=file_type)
    return fields
