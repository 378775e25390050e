"""Record layouts of the ZM and ZME reconciliation files, as data (formats.md §6.4 and §6.5).

Every field is ``(number, attribute, label, start, width, kind)``; ``start`` is the 0-based **byte** offset in the GBK
line, exactly as the table in formats.md lists it. Fields are separated by one space byte, so a ZM record is 607 bytes
and a ZME record 339 bytes. Widths come from the official ``DemoBase.parseZMFile`` / ``parseZMEFile`` length arrays.

Kinds:

* ``TEXT``: GBK text, left-aligned, space-padded (trailing spaces are padding, never data).
* ``PAN``: a masked card number (first six and last four digits at most), left-aligned like ``TEXT``.
* ``TIME``: ``MMDDhhmmss`` (10 digits) or blank; kept as text because the file carries no year.
* ``MMDD``: a month and day (4 digits) or blank.
* ``AMOUNT``: an unsigned amount in fen, zero-padded digits, required.
* ``OPT_AMOUNT``: like ``AMOUNT`` but may be blank (``None``).
* ``SIGNED``: ``X+n``: ``D``/``C`` (or a blank sign) then digits, in fen. ``D`` (the merchant is debited) gives a
  negative number, ``C`` or a blank sign a positive one; an all-blank field is ``None``. A zero is written with the
  field's ``zero_sign`` (what the network's own files show for that field).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Kind(StrEnum):
    TEXT = "text"
    PAN = "pan"
    TIME = "time"
    MMDD = "mmdd"
    AMOUNT = "amount"
    OPT_AMOUNT = "opt_amount"
    SIGNED = "signed"


@dataclass(frozen=True, slots=True)
class Field:
    """One fixed-width field of a record line."""

    number: int
    attr: str
    label: str
    start: int
    width: int
    kind: Kind
    zero_sign: str = " "

    @property
    def end(self) -> int:
        """Byte offset just past the field (exclusive)."""
        return self.start + self.width


T, P, TM, MD, A, OA, S = Kind.TEXT, Kind.PAN, Kind.TIME, Kind.MMDD, Kind.AMOUNT, Kind.OPT_AMOUNT, Kind.SIGNED

# §6.4 商户一般交易明细 (ZM): number, attribute, label, start, width, kind[, zero sign]
ZM_FIELDS: tuple[Field, ...] = tuple(
    Field(*row)
    for row in (
        (1, "txn_code", "交易代码", 0, 3, T),
        (2, "acquirer_code", "代理机构标识码", 4, 11, T),
        (3, "sender_code", "发送机构标识码", 16, 11, T),
        (4, "trace_no", "系统跟踪号", 28, 6, T),
        (5, "trans_time", "交易传输时间", 35, 10, TM),
        (6, "pan", "帐号", 46, 19, P),
        (7, "amount", "交易金额", 66, 12, A),
        (8, "mcc", "商户类别", 79, 4, T),
        (9, "terminal_type", "终端类型", 84, 2, T),
        (10, "query_id", "查询流水号", 87, 21, T),
        (11, "old_pay_method", "支付方式(旧)", 109, 2, T),
        (12, "order_id", "商户订单号", 112, 32, T),
        (13, "pay_card_type", "支付卡类型", 145, 2, T),
        (14, "orig_trace_no", "原始交易的系统跟踪号", 148, 6, T),
        (15, "orig_trans_time", "原始交易日期时间", 155, 10, TM),
        (16, "merchant_fee", "商户手续费", 166, 13, S, "D"),
        (17, "settle_amount", "结算金额", 180, 13, S, "C"),
        (18, "pay_method", "支付方式", 194, 4, T),
        (19, "group_mer_id", "集团商户代码", 199, 15, T),
        (20, "txn_type", "交易类型", 215, 2, T),
        (21, "txn_sub_type", "交易子类", 218, 2, T),
        (22, "biz_type", "业务类型", 221, 6, T),
        (23, "acc_type", "帐号类型", 228, 2, T),
        (24, "bill_type", "账单类型", 231, 4, T),
        (25, "bill_no", "账单号码", 236, 32, T),
        (26, "interact_mode", "交互方式", 269, 1, T),
        (27, "orig_query_id", "原交易查询流水号", 271, 21, T),
        (28, "mer_id", "商户代码", 293, 15, T),
        (29, "split_mode", "分账入账方式", 309, 1, T),
        (30, "sub_mer_id", "二级商户代码", 311, 15, T),
        (31, "sub_mer_abbr", "二级商户简称", 327, 32, T),
        (32, "sub_mer_split_amount", "二级商户分账入账金额", 360, 13, S),
        (33, "net_amount", "清算净额", 374, 13, S, "C"),
        (34, "term_id", "终端号", 388, 8, T),
        (35, "mer_reserved", "商户自定义域", 397, 32, T),
        (36, "discount_amount", "优惠金额", 430, 13, S),
        (37, "invoice_amount", "发票金额", 444, 13, S),
        (38, "instalment_fee", "分期付款附加手续费", 458, 12, S),
        (39, "instalment_count", "分期付款期数", 471, 2, T),
        (40, "medium", "交易介质", 474, 1, T),
        (41, "orig_order_id", "原始交易订单号", 476, 32, T),
        (42, "reserved", "保留使用", 509, 98, T),
    )
)
ZM_LINE_LENGTH = 607

# §6.5 商户差错交易明细流水 (ZME)
ZME_FIELDS: tuple[Field, ...] = tuple(
    Field(*row)
    for row in (
        (1, "txn_code", "交易代码", 0, 3, T),
        (2, "acquirer_code", "代理机构标识码", 4, 11, T),
        (3, "sender_code", "发送机构标识码", 16, 11, T),
        (4, "trace_no", "系统跟踪号", 28, 6, T),
        (5, "trans_time", "交易传输时间", 35, 10, TM),
        (6, "pan", "帐号", 46, 19, P),
        (7, "amount", "交易金额", 66, 12, A),
        (8, "mcc", "商户类型", 79, 4, T),
        (9, "terminal_type", "终端类型", 84, 2, T),
        (10, "pay_card_type", "支付卡类型", 87, 2, T),
        (11, "prev_trace_no", "上一笔交易的系统跟踪号", 90, 6, T),
        (12, "prev_trans_time", "上一笔交易的日期时间", 97, 10, TM),
        (13, "prev_settle_date", "上一笔交易清算日期", 108, 4, MD),
        (14, "prev_amount", "上一笔交易金额", 113, 12, OA),
        (15, "merchant_fee", "商户手续费", 126, 13, S, "D"),
        (16, "settle_amount", "结算金额", 140, 13, S, "C"),
        (17, "group_mer_id", "集团商户代码", 154, 15, T),
        (18, "mer_id", "商户代码", 170, 15, T),
        (19, "split_flag", "分账清算标识", 186, 1, T),
        (20, "instalment_fee", "分期付款附加手续费", 188, 12, S),
        (21, "instalment_count", "分期付款期数", 201, 2, T),
        (22, "reserved", "保留使用", 204, 135, T),
    )
)
ZME_LINE_LENGTH = 339

del T, P, TM, MD, A, OA, S


def _check(fields: tuple[Field, ...], length: int) -> None:
    """The table must be contiguous with one separator byte and end exactly at the line length."""
    position = 0
    for index, field in enumerate(fields, start=1):
        if field.number != index or field.start != position or field.width < 1:
            raise AssertionError(f"layout field {field.number} {field.attr} is misplaced")
        position = field.end + 1
    if fields[-1].end != length:
        raise AssertionError("layout does not end at the line length")


_check(ZM_FIELDS, ZM_LINE_LENGTH)
_check(ZME_FIELDS, ZME_LINE_LENGTH)
