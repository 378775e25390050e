"""ZME adjustments/errors file ``INN{YYMMDD}88ZME_{merId}`` (商户差错交易明细流水, formats.md §6.5): 339-byte lines.

Same conventions as :mod:`.zm`: amounts in fen, ``X+n`` fields signed (``D`` negative), times as ``MMDDhhmmss`` text.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime

from ._fixed import CRLF, FixedCodec, Source, resolve_time
from .errors import LineError
from .layout import ZME_FIELDS, ZME_LINE_LENGTH


@dataclass(frozen=True, slots=True, kw_only=True)
class ZMERecord:
    """One line of a ZME file; attribute order and meaning follow ``layout.ZME_FIELDS``."""

    txn_code: str = ""  # 交易代码
    acquirer_code: str = ""  # 代理机构标识码
    sender_code: str = ""  # 发送机构标识码
    trace_no: str = ""  # 系统跟踪号
    trans_time: str = ""  # 交易传输时间 MMDDhhmmss
    pan: str = ""  # 帐号, masked
    amount: int = 0  # 交易金额, fen
    mcc: str = ""  # 商户类型
    terminal_type: str = ""  # 终端类型
    pay_card_type: str = ""  # 支付卡类型
    prev_trace_no: str = ""  # 上一笔交易的系统跟踪号
    prev_trans_time: str = ""  # 上一笔交易的日期时间 MMDDhhmmss
    prev_settle_date: str = ""  # 上一笔交易清算日期 MMDD
    prev_amount: int | None = None  # 上一笔交易金额, fen (blank → None)
    merchant_fee: int | None = 0  # 商户手续费, signed fen
    settle_amount: int | None = 0  # 结算金额, signed fen
    group_mer_id: str = ""  # 集团商户代码
    mer_id: str = ""  # 商户代码
    split_flag: str = ""  # 分账清算标识
    instalment_fee: int | None = 0  # 分期付款附加手续费, signed fen (X+n11)
    instalment_count: str = ""  # 分期付款期数
    reserved: str = ""  # 保留使用

    def transmitted_at(self, settle_date: date) -> datetime | None:
        """交易传输时间 as an aware Beijing datetime (the year nearest the file's settlement date)."""
        return resolve_time(self.trans_time, settle_date)


ZME_CODEC: FixedCodec[ZMERecord] = FixedCodec(ZME_FIELDS, ZME_LINE_LENGTH, ZMERecord, "ZME")


def parse_zme(source: Source, *, strict: bool = False) -> Iterator[ZMERecord | LineError]:
    """Yield a :class:`ZMERecord` per line, or a :class:`LineError` for a malformed line (see :func:`.zm.parse_zm`)."""
    return ZME_CODEC.parse(source, strict=strict)


def write_zme(records: Iterable[ZMERecord], *, newline: bytes = CRLF) -> bytes:
    """The ZME file: one 339-byte GBK line per record, each ended by ``newline``."""
    return ZME_CODEC.write(records, newline=newline)


def iter_zme_lines(records: Iterable[ZMERecord], *, newline: bytes = CRLF) -> Iterator[bytes]:
    """Like :func:`write_zme`, one line at a time."""
    return ZME_CODEC.iter_lines(records, newline=newline)
