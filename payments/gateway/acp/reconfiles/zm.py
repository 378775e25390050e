"""ZM detail file ``INN{YYMMDD}88ZM_{merId}`` (商户一般交易明细, formats.md §6.4): 607-byte GBK lines.

Amounts are integers of fen. ``X+n12`` fields (fee, settlement, …) are signed integers from the merchant's side:
``D`` (merchant debited) is negative, ``C`` positive; e.g. ``D000000002861`` → ``-2861``. Times stay ``MMDDhhmmss``
text because the file has no year: :meth:`ZMRecord.transmitted_at` resolves them against the settlement date.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime

from ._fixed import CRLF, FixedCodec, Source, resolve_time
from .errors import LineError
from .layout import ZM_FIELDS, ZM_LINE_LENGTH


@dataclass(frozen=True, slots=True, kw_only=True)
class ZMRecord:
    """One line of a ZM file; attribute order and meaning follow ``layout.ZM_FIELDS``.

    Defaults are what the network's own files carry in unused fields (blank text, zero sub-merchant code and zero
    ``X+n`` amounts with a blank sign).
    """

    txn_code: str = ""  # 交易代码 (S22 消费, S30 退款, S56 …)
    acquirer_code: str = ""  # 代理机构标识码
    sender_code: str = ""  # 发送机构标识码
    trace_no: str = ""  # 系统跟踪号 (traceNo)
    trans_time: str = ""  # 交易传输时间 MMDDhhmmss (traceTime)
    pan: str = ""  # 帐号, masked (622609******0048)
    amount: int = 0  # 交易金额, fen
    mcc: str = ""  # 商户类别
    terminal_type: str = ""  # 终端类型
    query_id: str = ""  # 查询流水号 (queryId)
    old_pay_method: str = ""  # 支付方式(旧)
    order_id: str = ""  # 商户订单号 (orderId)
    pay_card_type: str = ""  # 支付卡类型 (01 借记, 02 贷记, 03 准贷记 …)
    orig_trace_no: str = ""  # 原始交易的系统跟踪号
    orig_trans_time: str = ""  # 原始交易日期时间 MMDDhhmmss
    merchant_fee: int | None = 0  # 商户手续费, signed fen (D → negative)
    settle_amount: int | None = 0  # 结算金额, signed fen (C → positive)
    pay_method: str = ""  # 支付方式
    group_mer_id: str = ""  # 集团商户代码
    txn_type: str = ""  # 交易类型 (txnType)
    txn_sub_type: str = ""  # 交易子类
    biz_type: str = ""  # 业务类型 (bizType)
    acc_type: str = ""  # 帐号类型
    bill_type: str = ""  # 账单类型
    bill_no: str = ""  # 账单号码
    interact_mode: str = ""  # 交互方式
    orig_query_id: str = ""  # 原交易查询流水号 (origQryId)
    mer_id: str = ""  # 商户代码 (merId)
    split_mode: str = ""  # 分账入账方式
    sub_mer_id: str = "000000000000000"  # 二级商户代码
    sub_mer_abbr: str = ""  # 二级商户简称 (GBK)
    sub_mer_split_amount: int | None = 0  # 二级商户分账入账金额, signed fen
    net_amount: int | None = 0  # 清算净额, signed fen
    term_id: str = ""  # 终端号
    mer_reserved: str = ""  # 商户自定义域 (reqReserved, GBK, 32 bytes)
    discount_amount: int | None = 0  # 优惠金额, signed fen
    invoice_amount: int | None = 0  # 发票金额, signed fen
    instalment_fee: int | None = 0  # 分期付款附加手续费, signed fen (X+n11)
    instalment_count: str = ""  # 分期付款期数
    medium: str = ""  # 交易介质
    orig_order_id: str = ""  # 原始交易订单号
    reserved: str = ""  # 保留使用 (the whole tail when a line is longer than 607 bytes)

    def transmitted_at(self, settle_date: date) -> datetime | None:
        """交易传输时间 as an aware Beijing datetime (the year nearest the file's settlement date)."""
        return resolve_time(self.trans_time, settle_date)

    def orig_transmitted_at(self, settle_date: date) -> datetime | None:
        """原始交易日期时间 as an aware Beijing datetime, or None when blank."""
        return resolve_time(self.orig_trans_time, settle_date)


ZM_CODEC: FixedCodec[ZMRecord] = FixedCodec(ZM_FIELDS, ZM_LINE_LENGTH, ZMRecord, "ZM")


def parse_zm(source: Source, *, strict: bool = False) -> Iterator[ZMRecord | LineError]:
    """Yield a :class:`ZMRecord` per line, or a :class:`LineError` (with its line number) for a malformed line.

    ``source`` is the file's bytes or a binary stream. LF and CRLF are both accepted, blank lines skipped, a longer
    reserved tail tolerated. With ``strict=True`` the first LineError is raised instead of yielded.
    """
    return ZM_CODEC.parse(source, strict=strict)


def write_zm(records: Iterable[ZMRecord], *, newline: bytes = CRLF) -> bytes:
    """The ZM file: one 607-byte GBK line per record, each ended by ``newline`` (CRLF, as the official sample).

    Raises RecordError when a value does not fit its field (too long, not GBK, negative amount, clear card number).
    """
    return ZM_CODEC.write(records, newline=newline)


def iter_zm_lines(records: Iterable[ZMRecord], *, newline: bytes = CRLF) -> Iterator[bytes]:
    """Like :func:`write_zm`, one line at a time (for streaming large files to disk)."""
    return ZM_CODEC.iter_lines(records, newline=newline)
