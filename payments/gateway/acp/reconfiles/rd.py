"""RD summary report ``RD2010{YYMMDD}01_{merId}`` (中国银联全渠道商户交易汇总表, formats.md §6.6).

A human-readable GBK text report with fixed columns and amounts in yuan (2 decimals) split 借/贷. The network treats it
as display-only and so do we: reconciliation is done from the ZM / ZME records, the RD report is read for a cross-check
and written so that our zip holds the same three members as the network's. :func:`write_rd` reproduces the layout of the
official sample byte for byte (``write_rd(parse_rd(sample)) == sample``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date

from ._fixed import CRLF, ENCODING, LF
from .errors import ReportError
from .zm import ZMRecord

TITLE = "中国银联全渠道商户交易汇总表"
CURRENCY_CNY = "人民币"
TOTAL_LABEL = "总计"
TYPE_HEADER = "交易类型"
CARD_HEADER = "卡性质"

#: RD row label of a ZM 交易代码. ``S56`` 自助消费 is from the official sample; the others are assumptions (⚠️).
TXN_CODE_LABELS = {"S22": "消费", "S30": "退货", "S31": "消费撤销", "S56": "自助消费"}
#: 卡性质 rows, always all four, in this order; keyed by the ZM 支付卡类型 (payCardType) that maps to them.
CARD_LABELS = (("01", "借记卡"), ("02", "贷记卡"), ("03", "准贷记卡"), (None, "其他卡"))

_LABEL_WIDTH = 20
_COUNT_WIDTH = 8
_AMOUNT_WIDTH = 16
_HEADER_WIDTH = 64
_RULE = "_" * 136
_SUBHEADER = " " * 41 + "借" + " " * 14 + "贷" + " " * 14 + "借" + " " * 14 + "贷" + " " * 15 + "借" + " " * 18 + "贷"
_ROW = re.compile(r"^(\S+)\s+(\d+)" + r"\s+(-?\d+\.\d\d)" * 6 + r"\s*$")


@dataclass(frozen=True, slots=True)
class RDRow:
    """One row of a report table: a count and six amounts in fen (交易金额, 费用, 资金清算差额; each 借 then 贷)."""

    label: str
    count: int = 0
    amount_debit: int = 0
    amount_credit: int = 0
    fee_debit: int = 0
    fee_credit: int = 0
    net_debit: int = 0
    net_credit: int = 0

    def amounts(self) -> tuple[int, int, int, int, int, int]:
        return (
            self.amount_debit,
            self.amount_credit,
            self.fee_debit,
            self.fee_credit,
            self.net_debit,
            self.net_credit,
        )


@dataclass(frozen=True, slots=True)
class RDReport:
    """The whole report: header facts, the table by transaction type and the table by card nature."""

    mer_id: str
    acquirer_code: str
    merchant_name: str
    settle_date: date
    generated_date: date
    currency: str = CURRENCY_CNY
    by_type: tuple[RDRow, ...] = ()
    type_total: RDRow = field(default_factory=lambda: RDRow(TOTAL_LABEL))
    by_card: tuple[RDRow, ...] = ()
    card_total: RDRow = field(default_factory=lambda: RDRow(TOTAL_LABEL))


# --- reading ----------------------------------------------------------------------------------------------------


def _fen(text: str) -> int:
    negative = text.startswith("-")
    yuan, cents = text.lstrip("-").split(".")
    value = int(yuan) * 100 + int(cents)
    return -value if negative else value


def _date(text: str, what: str) -> date:
    try:
        return date(int(text[:4]), int(text[4:6]), int(text[6:8]))
    except ValueError:
        raise ReportError(f"RD report {what} {text!r} is not a date") from None


def _header(text: str, label: str, pattern: str = r"(\S*)") -> str:
    match = re.search(re.escape(label) + ":" + pattern, text)
    if match is None:
        raise ReportError(f"RD report has no {label} line")
    return match.group(1).strip()


def parse_rd(data: bytes) -> RDReport:
    """Read an RD report (GBK, CRLF or LF). Raises ReportError when the text or a table is missing or malformed."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise ReportError("an RD report must be given as bytes")
    try:
        text = bytes(data).decode(ENCODING)
    except UnicodeDecodeError as exc:
        raise ReportError(f"RD report is not GBK text (byte {exc.start})") from None
    if TITLE not in text:
        raise ReportError("not an RD report: the title 中国银联全渠道商户交易汇总表 is missing")
    name_match = re.search(r"商户名称:(.*?)\s*生成日期:(\d{8})", text)
    if name_match is None:
        raise ReportError("RD report has no 商户名称 / 生成日期 line")
    tables: dict[str, tuple[list[RDRow], RDRow | None]] = {}
    section: str | None = None
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith(TYPE_HEADER) or stripped.startswith(CARD_HEADER):
            section = TYPE_HEADER if stripped.startswith(TYPE_HEADER) else CARD_HEADER
            if section in tables:
                raise ReportError(f"RD report has two {section} tables")
            tables[section] = ([], None)
            continue
        match = _ROW.match(stripped)
        if match is None:
            continue
        if section is None or tables[section][1] is not None:
            raise ReportError(f"RD report row outside a table: {stripped[:40]!r}")
        amounts = [_fen(value) for value in match.groups()[2:]]
        row = RDRow(match.group(1), int(match.group(2)), *amounts)
        rows, _ = tables[section]
        if row.label == TOTAL_LABEL:
            tables[section] = (rows, row)
        else:
            rows.append(row)
    for name in (TYPE_HEADER, CARD_HEADER):
        if name not in tables or tables[name][1] is None:
            raise ReportError(f"RD report has no complete {name} table")
    type_rows, type_total = tables[TYPE_HEADER]
    card_rows, card_total = tables[CARD_HEADER]
    assert type_total is not None and card_total is not None
    return RDReport(
        mer_id=_header(text, "商户代码"),
        acquirer_code=_header(text, "收单机构"),
        merchant_name=name_match.group(1).strip(),
        settle_date=_date(_header(text, "清算日期", r"(\d{8})"), "清算日期"),
        generated_date=_date(name_match.group(2), "生成日期"),
        currency=_header(text, "清算币种"),
        by_type=tuple(type_rows),
        type_total=type_total,
        by_card=tuple(card_rows),
        card_total=card_total,
    )


# --- writing ----------------------------------------------------------------------------------------------------


def _gbk(text: str, what: str) -> bytes:
    try:
        return text.encode(ENCODING)
    except UnicodeEncodeError:
        raise ReportError(f"RD report {what} cannot be encoded in GBK") from None


def _yuan(fen: int) -> str:
    sign = "-" if fen < 0 else ""
    return f"{sign}{abs(fen) // 100}.{abs(fen) % 100:02d}"


def _row(row: RDRow) -> bytes:
    label = _gbk(row.label, "row label")
    if len(label) >= _LABEL_WIDTH or any(ch.isspace() for ch in row.label) or not row.label:
        raise ReportError(f"RD row label must be 1–{_LABEL_WIDTH - 1} GBK bytes without spaces")
    count = str(row.count)
    if row.count < 0 or len(count) > _COUNT_WIDTH:
        raise ReportError("RD row count out of range")
    parts = [label.ljust(_LABEL_WIDTH), count.rjust(_COUNT_WIDTH).encode("ascii")]
    for fen in row.amounts():
        value = _yuan(fen)
        if len(value) >= _AMOUNT_WIDTH:
            raise ReportError("RD row amount too large for its column")
        parts.append(value.rjust(_AMOUNT_WIDTH).encode("ascii"))
    return b"".join(parts)


def _table(header: str, rows: tuple[RDRow, ...], total: RDRow) -> list[bytes]:
    head = _gbk(header, "header").ljust(_LABEL_WIDTH) + _gbk(
        "交易笔数" + " " * 15 + "交易金额" + " " * 25 + "费用" + " " * 30 + "资金清算差额", "header"
    )
    lines = [head, _gbk(_SUBHEADER, "header"), _RULE.encode("ascii")]
    lines.extend(_row(row) for row in rows)
    lines.extend([_RULE.encode("ascii"), _row(total)])
    return lines


def _header_line(left: str, right: str) -> bytes:
    return _gbk(left, "header").ljust(_HEADER_WIDTH) + _gbk(right, "header")


def write_rd(report: RDReport, *, newline: bytes = CRLF) -> bytes:
    """The report in the official sample's layout (GBK, every line ended by ``newline``)."""
    if newline not in (CRLF, LF):
        raise ReportError("newline must be CRLF or LF")
    lines = [
        b" " * 73 + _gbk(TITLE, "title") + b" " * 12,
        b"",
        _header_line(f"商户代码:{report.mer_id}", f"清算币种:{report.currency}"),
        _header_line(f"收单机构:{report.acquirer_code}", f"清算日期:{report.settle_date:%Y%m%d}"),
        _header_line(f"商户名称:{report.merchant_name}", f"生成日期:{report.generated_date:%Y%m%d}"),
        b"",
        b"",
        *_table(TYPE_HEADER, report.by_type, report.type_total),
        b"",
        *_table(CARD_HEADER, report.by_card, report.card_total),
    ]
    return b"".join(line + newline for line in lines)


# --- building from records --------------------------------------------------------------------------------------


class _Accumulator:
    __slots__ = ("count", "amount_debit", "amount_credit", "fee_debit", "fee_credit", "net")

    def __init__(self) -> None:
        self.count = self.amount_debit = self.amount_credit = self.fee_debit = self.fee_credit = self.net = 0

    def add(self, record: ZMRecord) -> None:
        settle = record.settle_amount or 0
        fee = record.merchant_fee or 0
        self.count += 1
        if settle < 0:  # money goes back from the merchant (refund, void)
            self.amount_debit += record.amount
        else:
            self.amount_credit += record.amount
        if fee < 0:
            self.fee_debit -= fee
        else:
            self.fee_credit += fee
        self.net += settle

    def row(self, label: str) -> RDRow:
        return RDRow(
            label,
            self.count,
            self.amount_debit,
            self.amount_credit,
            self.fee_debit,
            self.fee_credit,
            -self.net if self.net < 0 else 0,
            self.net if self.net > 0 else 0,
        )


def _sum_rows(rows: Iterable[RDRow]) -> RDRow:
    columns = [0] * 7
    for row in rows:
        for index, value in enumerate((row.count, *row.amounts())):
            columns[index] += value
    return RDRow(TOTAL_LABEL, *columns)


def build_rd(
    records: Iterable[ZMRecord],
    *,
    mer_id: str,
    acquirer_code: str,
    merchant_name: str,
    settle_date: date,
    generated_date: date,
) -> RDReport:
    """The RD report of a merchant day from its ZM records (rows by 交易代码 and by 支付卡类型).

    Amounts go to 贷 when the record's settlement is a credit to the merchant and to 借 otherwise; the fee column
    follows the fee's own sign; 资金清算差额 is the row's net settlement, on the side of its sign. Totals add columns.
    """
    by_code: dict[str, _Accumulator] = {}
    by_card = {label: _Accumulator() for _, label in CARD_LABELS}
    card_of = {code: label for code, label in CARD_LABELS if code is not None}
    for record in records:
        by_code.setdefault(record.txn_code, _Accumulator()).add(record)
        by_card[card_of.get(record.pay_card_type, "其他卡")].add(record)
    type_rows = tuple(by_code[code].row(TXN_CODE_LABELS.get(code, code or "其他")) for code in sorted(by_code))
    card_rows = tuple(by_card[label].row(label) for _, label in CARD_LABELS)
    return RDReport(
        mer_id=mer_id,
        acquirer_code=acquirer_code,
        merchant_name=merchant_name,
        settle_date=settle_date,
        generated_date=generated_date,
        by_type=type_rows,
        type_total=_sum_rows(type_rows),
        by_card=card_rows,
        card_total=_sum_rows(card_rows),
    )
