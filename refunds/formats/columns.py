"""The columns of a batch refund file, their Chinese names, and field checks (pure functions)."""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo

from django.utils.translation import gettext_lazy as _

BEIJING = ZoneInfo("Asia/Shanghai")

# Request columns, in the order of templates and result files.
REQUEST_COLUMNS = (
    "orderId",
    "txnAmt",
    "origQryId",
    "origOrderId",
    "origTxnTime",
    "currencyCode",
    "merId",
    "reqReserved",
    "reason",
)
RESULT_COLUMNS = ("respCode", "respMsg", "queryId", "settleDate", "traceNo", "traceTime")
ID_COLUMNS = frozenset({"orderId", "origQryId", "origOrderId", "merId"})

# Chinese names (templates and Excel headers); the text format accepts them in its title line too.
CHINESE = {
    "orderId": "订单号",
    "txnAmt": "退货金额(元)",
    "origQryId": "原交易查询流水号",
    "origOrderId": "原订单号",
    "origTxnTime": "原交易时间",
    "currencyCode": "币种",
    "merId": "商户号",
    "reqReserved": "保留域",
    "reason": "退货原因",
    "respCode": "应答码",
    "respMsg": "应答信息",
    "queryId": "查询流水号",
    "settleDate": "清算日期",
    "traceNo": "系统跟踪号",
    "traceTime": "交易传输时间",
}
# The Chinese amount column of a text file is in fen (the text format's unit).
CHINESE_TEXT_AMOUNT = "退货金额(分)"

LABELS = {
    "orderId": _("Order ID"),
    "txnAmt": _("Amount"),
    "origQryId": _("Original query ID"),
    "origOrderId": _("Original order ID"),
    "origTxnTime": _("Original transaction time"),
    "currencyCode": _("Currency"),
    "merId": _("Merchant number"),
    "reqReserved": _("Reserved field"),
    "reason": _("Refund reason"),
    "line": _("Line"),
}

_ALIASES = {
    "订单号": "orderId",
    "退货订单号": "orderId",
    "退货金额(元)": "txnAmt",
    "退货金额": "txnAmt",
    "退货金额(分)": "txnAmt",
    "金额": "txnAmt",
    "原交易查询流水号": "origQryId",
    "原查询流水号": "origQryId",
    "原订单号": "origOrderId",
    "原交易订单号": "origOrderId",
    "原交易时间": "origTxnTime",
    "币种": "currencyCode",
    "交易币种": "currencyCode",
    "商户号": "merId",
    "商户代码": "merId",
    "保留域": "reqReserved",
    "请求方保留域": "reqReserved",
    "退货原因": "reason",
    "原因": "reason",
}
_ENGLISH = {name.lower(): name for name in REQUEST_COLUMNS}

MAX_LEN = {"reqReserved": 1024, "reason": 255, "currencyCode": 3}
ORDER_ID_RE = re.compile(r"[0-9A-Za-z]{8,32}")
QUERY_ID_RE = re.compile(r"[0-9A-Za-z]{1,21}")
ORIG_ORDER_ID_RE = re.compile(r"[0-9A-Za-z]{1,40}")
MER_ID_RE = re.compile(r"[0-9A-Za-z]{1,15}")
FEN_RE = re.compile(r"\d{1,12}")
YUAN_RE = re.compile(r"\d{1,10}(\.\d{1,2})?")
TIME_RE = re.compile(r"\d{14}")
# What Excel shows for a long number: 2.01707E+20, 2.01707e20, 201707000000000000000.0
SCIENTIFIC_RE = re.compile(r"[0-9]+(\.[0-9]*)?[eE][+-]?[0-9]+|[0-9]+\.0+")


def column_key(name) -> str | None:
    """The canonical key of a header cell (English, any case, or Chinese; full-width brackets and
    spaces ignored), or None when unknown."""
    if name is None:
        return None
    text = unicodedata.normalize("NFKC", str(name)).strip().replace(" ", "").lstrip("\ufeff")
    if not text:
        return None
    return _ENGLISH.get(text.lower()) or _ALIASES.get(text)


def header_name(key: str, lang: str, *, text: bool = False) -> str:
    """The column's header in a template or result file: Chinese names for ``zh``, else the ACP key."""
    if lang.startswith("zh"):
        if text and key == "txnAmt":
            return CHINESE_TEXT_AMOUNT
        return CHINESE.get(key, key)
    return key


class FieldError(ValueError):
    """A bad field: the message code, the column and its params."""

    def __init__(self, code: str, column: str, params: dict | None = None):
        super().__init__(code)
        self.code = code
        self.column = column
        self.params = params or {}


def parse_fen(text: str) -> int:
    if not FEN_RE.fullmatch(text):
        raise FieldError("amount_format", "txnAmt", {"value": text[:20]})
    value = int(text)
    if value <= 0:
        raise FieldError("amount_not_positive", "txnAmt")
    return value


def parse_yuan(value) -> int:
    """Yuan with at most two decimals (a text, an int or a float cell) → fen; never rounds."""
    if isinstance(value, bool):
        raise FieldError("amount_format", "txnAmt", {"value": str(value)})
    if isinstance(value, int):
        amount = Decimal(value)
    elif isinstance(value, float):
        amount = Decimal(repr(value))
    elif isinstance(value, Decimal):
        amount = value
    else:
        text = str(value).strip().replace(",", "")
        if not YUAN_RE.fullmatch(text):
            raise FieldError("amount_yuan_format", "txnAmt", {"value": str(value)[:20]})
        amount = Decimal(text)
    try:
        fen = amount * 100
        if fen != fen.to_integral_value() or not fen.is_finite():
            raise FieldError("amount_yuan_format", "txnAmt", {"value": str(value)[:20]})
    except InvalidOperation:
        raise FieldError("amount_yuan_format", "txnAmt", {"value": str(value)[:20]}) from None
    fen_int = int(fen)
    if fen_int <= 0:
        raise FieldError("amount_not_positive", "txnAmt")
    if fen_int >= 10**12:
        raise FieldError("amount_yuan_format", "txnAmt", {"value": str(value)[:20]})
    return fen_int


def parse_txn_time(text: str) -> datetime:
    if not TIME_RE.fullmatch(text):
        raise FieldError("orig_time_format", "origTxnTime", {"value": text[:20]})
    try:
        return datetime.strptime(text, "%Y%m%d%H%M%S").replace(tzinfo=BEIJING)
    except ValueError:
        raise FieldError("orig_time_format", "origTxnTime", {"value": text[:20]}) from None


def check_id(column: str, text: str) -> str:
    """An id field as text: refuse what Excel made of a long number (2.01707E+20) and bad characters."""
    if SCIENTIFIC_RE.fullmatch(text):
        raise FieldError("excel_number_id", column, {"value": text[:30]})
    pattern = {
        "orderId": ORDER_ID_RE,
        "origQryId": QUERY_ID_RE,
        "origOrderId": ORIG_ORDER_ID_RE,
        "merId": MER_ID_RE,
    }[column]
    if not pattern.fullmatch(text):
        code = "order_id_format" if column == "orderId" else "id_format"
        raise FieldError(code, column, {"value": text[:40]})
    return text


def build_line(cells: dict[str, object], *, yuan: bool) -> tuple[str, int, dict]:
    """Check one line's cells (column key → raw value: text, or an Excel cell value) and return
    ``(order_id, amount_fen, data)``; raises ``FieldError`` for the first bad field."""
    data: dict[str, str] = {}
    for key, raw in cells.items():
        if raw is None:
            continue
        if isinstance(raw, str) and raw.startswith("="):
            raise FieldError("formula", key)
        if key in ID_COLUMNS and isinstance(raw, int | float | Decimal) and not isinstance(raw, bool):
            raise FieldError("excel_number_id", key, {"value": str(raw)[:30]})
        if key == "origTxnTime" and isinstance(raw, datetime):
            text = raw.strftime("%Y%m%d%H%M%S")
        elif key == "txnAmt" and yuan and not isinstance(raw, str):
            data[key] = raw  # converted below
            continue
        elif key == "origTxnTime" and isinstance(raw, int | float | Decimal):
            raise FieldError("excel_number_id", key, {"value": str(raw)[:30]})
        else:
            text = str(raw).strip()
        if not text:
            continue
        limit = MAX_LEN.get(key, 64)
        if len(text) > limit:
            raise FieldError("field_too_long", key, {"limit": limit})
        data[key] = text
    order_id = data.get("orderId", "")
    if not order_id:
        raise FieldError("order_id_missing", "orderId")
    check_id("orderId", order_id)
    if "txnAmt" not in data:
        raise FieldError("amount_missing", "txnAmt")
    amount = parse_yuan(data["txnAmt"]) if yuan else parse_fen(str(data["txnAmt"]))
    data["txnAmt"] = str(amount)
    if "origQryId" in data:
        check_id("origQryId", data["origQryId"])
    elif "origOrderId" in data and "origTxnTime" in data:
        check_id("origOrderId", data["origOrderId"])
        parse_txn_time(data["origTxnTime"])
    else:
        raise FieldError("orig_missing", "origQryId")
    if "origTxnTime" in data and "origQryId" in data:
        parse_txn_time(data["origTxnTime"])
    if "merId" in data:
        check_id("merId", data["merId"])
    currency = data.get("currencyCode") or "156"
    if currency != "156":
        raise FieldError("currency", "currencyCode", {"value": currency[:3]})
    data["currencyCode"] = "156"
    return order_id, amount, data
