"""The ACP ``respCode`` table (formats.md §5) and what the portal does with each code.

``zh`` is the network's own wording (a protocol fact, shown as is); ``label`` is the translatable English text for
the UI. Classification follows formats.md §4–§5: ``00``/``A6`` success; ``03``/``04``/``05`` pending → query;
``02``/``06``/``98`` retry later; everything else, including unknown codes, is a final failure. For single payouts
(代付, txnType 12) ``01``/``12``/``34``/``60`` also mean "query again" (official 代付 demo, §4).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _


class RespClass(enum.StrEnum):
    """What to do with an answer."""

    SUCCESS = "success"
    PENDING_QUERY = "pending_query"
    RETRY_LATER = "retry_later"
    FAILURE = "failure"


@dataclass(frozen=True)
class RespCode:
    code: str
    zh: str
    label: str | Promise
    classification: RespClass


S, P, R, F = RespClass.SUCCESS, RespClass.PENDING_QUERY, RespClass.RETRY_LATER, RespClass.FAILURE

_TABLE: tuple[tuple[str, str, str | Promise, RespClass], ...] = (
    ("00", "成功", _("Success"), S),
    ("A6", "有缺陷的成功", _("Success with defects"), S),
    ("01", "交易失败。详情请咨询95516", _("Transaction failed; call 95516 for details"), F),
    ("02", "系统未开放或暂时关闭，请稍后再试", _("System not open or temporarily closed; try again later"), R),
    ("03", "交易通讯超时，请发起查询交易", _("Communication timeout; query the transaction"), P),
    ("04", "交易状态未明，请查询对账结果", _("Transaction state unknown; check the query or reconciliation"), P),
    ("05", "交易已受理，请稍后查询交易结果", _("Transaction accepted; query the result later"), P),
    ("06", "系统繁忙，请稍后再试", _("System busy; try again later"), R),
    ("10", "报文格式错误", _("Message format error"), F),
    ("11", "验证签名失败", _("Signature verification failed"), F),
    ("12", "重复交易", _("Duplicate transaction"), F),
    ("13", "报文交易要素缺失", _("Required message fields missing"), F),
    ("14", "批量文件格式错误", _("Batch file format error"), F),
    ("15", "报文交易要素不支持", _("Message field not supported"), F),
    ("30", "交易未通过", _("Transaction declined"), F),
    ("31", "商户状态不正确", _("Merchant status is not valid"), F),
    ("32", "无此交易权限", _("No permission for this transaction"), F),
    ("33", "交易金额超限", _("Transaction amount over the limit"), F),
    ("34", "查无此交易", _("Transaction not found"), F),
    ("35", "原交易不存在或状态不正确", _("Original transaction not found or in a wrong state"), F),
    ("36", "与原交易信息不符", _("Does not match the original transaction"), F),
    ("37", "已超过最大查询次数或操作过于频繁", _("Query limit exceeded or too many operations"), F),
    ("38", "银联风险受限", _("Restricted by UnionPay risk control"), F),
    ("39", "交易不在受理时间范围内", _("Transaction outside the accepted time range"), F),
    ("40", "绑定关系检查失败", _("Binding check failed"), F),
    ("41", "批量状态不正确，无法下载", _("Batch state does not allow download"), F),
    ("42", "扣款成功但交易超过规定支付时间", _("Debited, but after the payment time limit"), F),
    ("43", "无此业务权限", _("No permission for this product"), F),
    ("44", "输入号码错误或暂未开通此项业务", _("Wrong number or product not enabled"), F),
    ("45", "原交易已被成功退货或已被成功撤销", _("Original transaction already refunded or voided"), F),
    ("46", "交易已被成功冲正", _("Transaction already reversed"), F),
    ("47", "Ⅱ/Ⅲ类户限额超限", _("Class II/III account limit exceeded"), F),
    ("48", "Ⅲ类户余额超限", _("Class III account balance limit exceeded"), F),
    ("60", "交易失败详询发卡行", _("Transaction failed; contact the card issuer"), F),
    ("61", "卡号无效", _("Invalid card number"), F),
    ("63", "卡状态不正确", _("Card status is not valid"), F),
    ("64", "余额不足", _("Insufficient balance"), F),
    ("65", "密码/有效期/CVN2有误", _("Wrong PIN, expiry date or CVN2"), F),
    ("66", "身份信息或手机号不正确", _("Wrong identity information or phone number"), F),
    ("67", "密码次数超限", _("Too many PIN attempts"), F),
    ("71", "短信验证码校验失败", _("SMS code verification failed"), F),
    ("73", "卡过期", _("Card expired"), F),
    ("81", "月累计超限", _("Monthly cumulative limit exceeded"), F),
    ("83", "发卡行处理中", _("Issuer still processing"), F),
    ("98", "文件不存在", _("File does not exist (yet)"), R),
    ("99", "通用错误", _("General error"), F),
)

RESP_CODES: dict[str, RespCode] = {code: RespCode(code, zh, label, cls) for code, zh, label, cls in _TABLE}

#: Codes that mean "query again" for a single payout (代付) on top of the generic pending codes.
PAYOUT_PENDING_CODES = frozenset({"01", "12", "34", "60"})
TXN_TYPE_PAYOUT = "12"

_UNKNOWN_ZH = "未知应答码"


def lookup(code: str | None) -> RespCode:
    """Return the table entry of ``code``; an unknown or missing code is a final failure."""
    entry = RESP_CODES.get((code or "").strip().upper())
    if entry is not None:
        return entry
    return RespCode((code or "").strip(), _UNKNOWN_ZH, _("Unknown response code"), RespClass.FAILURE)


def classify(code: str | None, *, txn_type: str | None = None) -> RespClass:
    """Classify ``code``; pass ``txn_type`` (of the transaction the code is about) for the 代付 special case."""
    normalised = (code or "").strip().upper()
    if txn_type == TXN_TYPE_PAYOUT and normalised in PAYOUT_PENDING_CODES:
        return RespClass.PENDING_QUERY
    return lookup(normalised).classification


def is_success(code: str | None) -> bool:
    """``00`` or ``A6``."""
    return classify(code) is RespClass.SUCCESS
