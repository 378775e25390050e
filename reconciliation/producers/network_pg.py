"""The PostgreSQL fast path of the ZM file and the RD summary: the 607-byte lines are built by the database.

The Python path (``network.zm_records_for`` → ``ledger.settle_line`` → the ZM codec) costs ~30 µs a line, ~30 s for a
merchant day of a million transactions. Here one ``COPY (SELECT …) TO STDOUT`` builds every line with ``rpad`` /
``lpad`` / ``to_char`` and the fee with :func:`ledger.settle_sql` (the same half-up rounding, minimum, maximum and
refund fee-return rule as ``settle_line``), and Python only streams the bytes, turning LF into CRLF.

The result is byte-identical to the Python path (tests/integration/test_zm_fast_path.py). Rows the SQL cannot write
exactly as the codec would are sent as a JSON array instead and written by the Python code itself: a text field that
is not printable ASCII (Chinese in ``reqReserved``: ``_fit`` cuts GBK bytes), an amount of 13 digits or more, a
``traceTime`` of ten digits that is not a valid ``MMDDhhmmss``, a clear card number, an original payment of another
merchant (its fee comes from that merchant's rates). Every field of our ZM lines is then ASCII, so the UTF-8 bytes
of the COPY are the GBK bytes of the file.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date, datetime

from django.db import connection

from payments.gateway.acp.reconfiles.rd import CARD_LABELS, TOTAL_LABEL, TXN_CODE_LABELS, RDReport, RDRow
from payments.gateway.acp.reconfiles.zm import ZM_CODEC
from payments.models import Transaction
from payments.settlement import business_tz
from portal.accounts.models import Organisation

from ..choices import FeeReturn
from ..ledger import (
    AMOUNT_LIMIT,
    SETTLED_TYPES,
    VOID_TYPES,
    FeeBook,
    base_fee_sql,
    basis_sql,
    fee_rates_sql,
    fee_return_rule,
    settle_line,
    settle_sql,
)
from ..models import FeeRate

# The codec's time check (_fixed._time_ok) on ten ASCII digits: month 01–12, day within the month (29 in February),
# hh < 24, mm, ss < 60; digit strings compare as their numbers under the "C" collation (cheaper than a regex).
_SHORT_MONTHS = ("04", "06", "09", "11")
BATCH_ROWS = 4096
CRLF = b"\r\n"  # the line end of the Python writer (iter_zm_lines' default)
MAX_RATE_BP = 1_000_000  # 2 × amount (< 10^12) × rate stays within bigint


def available() -> bool:
    """True when the database can build the lines (PostgreSQL) and every fee rate is within bigint arithmetic."""
    return connection.vendor == "postgresql" and not FeeRate.objects.filter(rate_bp__gt=MAX_RATE_BP).exists()


def _in(values) -> str:
    return "(" + ", ".join(f"'{value}'" for value in sorted(values)) + ")"


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _txn_code(txn_type: str) -> str:
    """network.TXN_CODES: S22 payment, S31 void, S30 refund."""
    return f"CASE WHEN {txn_type} IN {_in(VOID_TYPES)} THEN 'S31' WHEN {txn_type} = '04' THEN 'S30' ELSE 'S22' END"


def _sign(expr: str, zero_sign: str) -> str:
    """The sign of an ``X+n`` field: D (negative), C (positive), the field's zero sign for a zero."""
    if zero_sign == "D":
        return f"CASE WHEN {expr} > 0 THEN 'C' ELSE 'D' END"
    return f"CASE WHEN {expr} < 0 THEN 'D' ELSE 'C' END"


def _ten_digits(text: str) -> str:
    return f"(length({text}) = 10 AND translate({text}, '0123456789', '') = '')"


def _valid_time(text: str) -> str:
    """SQL: ten digits ``text`` are a valid ``MMDDhhmmss`` (``_fixed._time_ok``)."""

    def part(start: int) -> str:
        return f'substr({text}, {start}, 2) COLLATE "C"'

    last_day = f"CASE WHEN {part(1)} = '02' THEN '29' WHEN {part(1)} IN {_in(_SHORT_MONTHS)} THEN '30' ELSE '31' END"
    return (
        f"({part(1)} BETWEEN '01' AND '12' AND {part(3)} BETWEEN '01' AND {last_day} "
        f"AND {part(5)} < '24' AND {part(7)} < '60' AND {part(9)} < '60')"
    )


def _trans_time(trace_time: str, txn_time: str, tz: str) -> str:
    """``network._trace_time``: the stored traceTime when it is ten digits, else txnTime in Beijing time.

    NULL for ten digits that are no valid ``MMDDhhmmss``: the codec refuses them, so the row goes to Python.
    """
    return (
        f"CASE WHEN {_ten_digits(trace_time)} THEN CASE WHEN {_valid_time(trace_time)} THEN {trace_time} END "
        f"ELSE to_char({txn_time} AT TIME ZONE {_literal(tz)}, 'MMDDHH24MISS') END"
    )


def _rows_sql(*, order: bool = True) -> str:
    """The day's rows with what their lines need, fee and settlement included (parameters ``merchant_id``, ``day``,
    ``proportional``), in transmission order.

    Three layers, so that each expression is computed once: the inner query joins, filters and sorts narrow rows
    (text already cut to what a line holds; its ORDER BY keeps PostgreSQL from pulling it up), the next adds the
    payment fee of the basis, the last the signed fee and settlement (``OFFSET 0`` fences them likewise).
    """
    tz = business_tz().key
    basis = basis_sql(txn="t", orig="o")
    base_fee = base_fee_sql(amount="i.basis_amount", card="i.basis_card", foreign="i.basis_foreign", rates="r")
    fee, settlement = settle_sql(
        txn_type="f.txn_type", amount="f.amount", base_fee="f.base_fee", basis_amount="f.basis_amount",
        proportional_param="proportional",
    )  # fmt: skip
    return f"""
        SELECT f.*, {fee} AS fee, {settlement} AS settlement FROM (
            SELECT i.*, {base_fee} AS base_fee,
                   {_trans_time("i.trace_time", "i.txn_time", tz)} AS trans_time,
                   CASE WHEN i.o_id IS NULL THEN ''
                        ELSE {_trans_time("i.o_trace_time", "i.o_txn_time", tz)} END AS o_trans_time
            FROM (
                SELECT t.id, t.merchant_id, t.acquirer_id, t.txn_time, t.txn_type, t.txn_sub_type, t.biz_type,
                       t.channel_type, t.amount, t.query_id, t.trace_no, t.trace_time, t.orig_query_id, t.orig_id,
                       t.card_masked, t.card_type, left(t.order_id, 32) AS order_id,
                       left(t.req_reserved, 32) AS req_reserved, left(a.code, 11) AS acquirer_code,
                       o.id AS o_id, o.merchant_id AS o_merchant_id, o.amount AS o_amount,
                       o.card_type AS o_card_type, o.trace_no AS o_trace_no, o.trace_time AS o_trace_time,
                       o.txn_time AS o_txn_time, o.query_id AS o_query_id, left(o.order_id, 32) AS o_order_id,
                       {basis["basis_amount"]} AS basis_amount, {basis["basis_card"]} AS basis_card,
                       {basis["basis_foreign"]} AS basis_foreign
                FROM payments_transaction t
                JOIN accounts_organisation a ON a.id = t.acquirer_id
                LEFT JOIN payments_transaction o ON o.id = t.orig_id
                WHERE t.merchant_id = %(merchant_id)s AND t.settle_date = %(day)s AND t.status = 'success'
                  AND t.txn_type IN {_in(SETTLED_TYPES)}
                {"ORDER BY t.txn_time, t.id" if order else "OFFSET 0"}
            ) i CROSS JOIN ({fee_rates_sql("merchant_id")}) r
            OFFSET 0
        ) f
        OFFSET 0
    """


# Text the SQL writes as is: printable ASCII is one byte a character, as the codec's fast path writes it. (The
# merchant's code and MCC are constants of the file, checked once in Python.) Joined with ``||`` over ``::text``
# rather than ``concat()``, which looks up each argument's output function on every row.
_TEXT_COLUMNS = (
    "order_id", "req_reserved", "card_masked", "trace_no", "trace_time", "txn_type", "txn_sub_type", "biz_type",
    "channel_type", "query_id", "card_type", "orig_query_id", "acquirer_code", "o_trace_no", "o_trace_time",
    "o_query_id", "o_order_id",
)  # fmt: skip

SIMPLE_SQL = f"""(
    ({" || ".join(f"coalesce(s.{c}::text, '')" for c in _TEXT_COLUMNS)}) ~ '^[ -~]*$'
    AND length(translate(s.card_masked, '0123456789', '')) >= length(s.card_masked) - 10
    AND s.amount < {AMOUNT_LIMIT} AND s.fee IS NOT NULL AND s.trans_time IS NOT NULL AND s.o_trans_time IS NOT NULL
)"""


def _line_sql(merchant: Organisation) -> str:
    """The 607-byte ZM line (formats.md §6.4), field by field as ``network.zm_record`` fills a ZMRecord and the codec
    writes it: one ``format()`` call, ``%-Ns`` pads text (NULL is blank); every padded value is at most its field's
    width (varchar limits, ``left()`` in the inner query), so nothing is cut; constants are the record's defaults.
    Every argument is cast to ``text``: ``format()`` looks up an argument's output function whenever its type
    differs from the previous argument's, and varchar columns between text expressions did so ~20 times a row.
    """
    blank = " "
    fields = [  # (format, argument or None for a constant)
        ("%s", _txn_code("s.txn_type")),  # 1 交易代码
        ("%-11s", "s.acquirer_code"),  # 2 代理机构标识码 (acquirer.code[:11])
        ("%-11s", "s.acquirer_code"),  # 3 发送机构标识码
        ("%-6s", "s.trace_no"),  # 4 系统跟踪号
        ("%s", "s.trans_time"),  # 5 交易传输时间
        ("%-19s", "s.card_masked"),  # 6 帐号
        ("%s", "lpad(s.amount::text, 12, '0')"),  # 7 交易金额
        (merchant.mcc.ljust(4), None),  # 8 商户类别
        ("%-2s", "s.channel_type"),  # 9 终端类型
        ("%-21s", "s.query_id"),  # 10 查询流水号
        (blank * 2, None),  # 11 支付方式(旧)
        ("%-32s", "s.order_id"),  # 12 商户订单号
        ("%-2s", "s.card_type"),  # 13 支付卡类型
        ("%-6s", "s.o_trace_no"),  # 14 原始交易的系统跟踪号
        ("%-10s", "s.o_trans_time"),  # 15 原始交易日期时间
        ("%s", _sign("s.fee", "D")),  # 16 商户手续费: sign …
        ("%s", "lpad(abs(s.fee)::text, 12, '0')"),  # … and digits (no separator)
        ("%s", _sign("s.settlement", "C")),  # 17 结算金额
        ("%s", "lpad(abs(s.settlement)::text, 12, '0')"),
        (blank * 4 + " " + blank * 15, None),  # 18 支付方式, 19 集团商户代码
        ("%-2s", "s.txn_type"),  # 20 交易类型
        ("%-2s", "s.txn_sub_type"),  # 21 交易子类
        ("%-6s", "s.biz_type"),  # 22 业务类型
        (blank * 2 + " " + blank * 4 + " " + blank * 32 + " " + blank, None),  # 23 帐号类型 … 26 交互方式
        ("%-21s", "CASE WHEN s.orig_query_id <> '' THEN s.orig_query_id ELSE s.o_query_id END"),  # 27
        (merchant.code.ljust(15), None),  # 28 商户代码
        # 29 分账入账方式, 30 二级商户代码 (zeros), 31 二级商户简称, 32 二级商户分账入账金额 (zero, blank sign)
        (blank + " " + "0" * 15 + " " + blank * 32 + " " + " " + "0" * 12, None),
        ("%s", _sign("s.settlement", "C")),  # 33 清算净额 = settlement
        ("%s", "lpad(abs(s.settlement)::text, 12, '0')"),
        (blank * 8, None),  # 34 终端号
        ("%-32s", "s.req_reserved"),  # 35 商户自定义域
        # 36 优惠金额, 37 发票金额 (zero, blank sign), 38 分期付款附加手续费 (12), 39 期数, 40 交易介质
        (" " + "0" * 12 + " " + " " + "0" * 12 + " " + " " + "0" * 11 + " " + blank * 2 + " " + blank, None),
        ("%-32s", "s.o_order_id"),  # 41 原始交易订单号
        (blank * 98, None),  # 42 保留使用
    ]
    template, args = [], []
    glued = {16, 18, 28}  # indexes whose piece follows the previous one without a separator (sign + digits)
    for index, (piece, arg) in enumerate(fields):
        if index and index not in glued:
            template.append(" ")
        if arg is None:
            template.append(piece.replace("%", "%%"))
        else:
            args.append(f"({arg})::text")
            template.append(piece.replace("%", f"%{len(args)}$", 1))
    # "%%": the statement goes through psycopg's client-side parameters, where a lone % starts a placeholder.
    return f"format({_literal(''.join(template)).replace('%', '%%')}, {', '.join(args)})"


_JSON_COLUMNS = (
    "id", "merchant_id", "acquirer_id", "acquirer_code", "txn_time", "txn_type", "txn_sub_type", "biz_type",
    "channel_type", "amount", "query_id", "trace_no", "trace_time", "orig_query_id", "orig_id", "card_masked",
    "card_type", "order_id", "req_reserved", "o_id", "o_merchant_id", "o_amount", "o_card_type", "o_trace_no",
    "o_trace_time", "o_txn_time", "o_query_id", "o_order_id",
)  # fmt: skip
_TXN_FIELDS = (
    "txn_type", "txn_sub_type", "biz_type", "channel_type", "amount", "query_id", "trace_no", "trace_time",
    "orig_query_id", "card_masked", "card_type", "order_id", "req_reserved",
)  # fmt: skip


def zm_copy_sql(merchant: Organisation) -> str:
    """``COPY (…) TO STDOUT``: a ZM line per row (without its line ending), or a JSON array for a row Python writes.

    CSV whose quote is a control character: no line (printable ASCII) and no JSON text (control characters escaped)
    holds it, a CR or a LF, so every row comes out as is, backslashes included, each ended by LF.
    """
    json_row = f"json_build_array({', '.join(f's.{c}' for c in _JSON_COLUMNS)})::text"
    select = f"SELECT CASE WHEN {SIMPLE_SQL} THEN {_line_sql(merchant)} ELSE {json_row} END FROM ({_rows_sql()}) s"
    return f"COPY ({select}) TO STDOUT WITH (FORMAT csv, QUOTE E'\\x01', DELIMITER E'\\x02')"


def merchant_simple(merchant: Organisation) -> bool:
    """The merchant's code and MCC are written as constants: printable ASCII that fits its field."""
    code, mcc = merchant.code or "", merchant.mcc or ""
    return all(text.isascii() and text.isprintable() for text in (code, mcc)) and len(code) <= 15 and len(mcc) <= 4


def _python_line(values: dict, merchant: Organisation, book: FeeBook, rule: str, index: int) -> bytes:
    """A row the SQL left to Python: rebuild its ledger objects from the row's values, write it as the Python path."""
    from .network import zm_record

    txn = Transaction(
        id=values["id"],
        merchant_id=values["merchant_id"],
        txn_time=datetime.fromisoformat(values["txn_time"]),
        **{name: values[name] for name in _TXN_FIELDS},
    )
    txn.merchant = merchant
    txn.acquirer = Organisation(id=values["acquirer_id"], code=values["acquirer_code"])
    if values["o_id"] is not None:
        txn.orig = Transaction(
            id=values["o_id"],
            merchant_id=values["o_merchant_id"],
            amount=values["o_amount"],
            card_type=values["o_card_type"],
            trace_no=values["o_trace_no"],
            trace_time=values["o_trace_time"],
            txn_time=datetime.fromisoformat(values["o_txn_time"]),
            query_id=values["o_query_id"],
            order_id=values["o_order_id"],
        )
    return ZM_CODEC.format_record(zm_record(txn, settle_line(txn, book, rule)), index) + CRLF


def zm_chunks(merchant: Organisation, day: date) -> Iterator[bytes]:
    """The ZM file of the merchant day as byte chunks (CRLF lines), streamed from ``COPY … TO STDOUT``."""
    if not merchant_simple(merchant):
        raise ValueError("the merchant's code or MCC is not printable ASCII: use the Python path")
    book, rule = FeeBook(), fee_return_rule()  # read before the COPY holds the connection
    params = {"merchant_id": merchant.pk, "day": day, "proportional": rule == FeeReturn.PROPORTIONAL}
    batch: list = []
    index = 0
    with connection.cursor() as cursor, cursor.cursor.copy(zm_copy_sql(merchant), params) as copy:
        for data in copy:
            if data[0] == 0x5B:  # "[": a row for Python
                if batch:
                    yield b"".join(batch).replace(b"\n", CRLF)
                    batch.clear()
                yield _python_line(dict(zip(_JSON_COLUMNS, json.loads(bytes(data)), strict=True)), merchant, book,
                                   rule, index)  # fmt: skip
            else:
                batch.append(data)
                if len(batch) >= BATCH_ROWS:
                    yield b"".join(batch).replace(b"\n", CRLF)
                    batch.clear()
            index += 1
    if batch:
        yield b"".join(batch).replace(b"\n", CRLF)


# --- RD summary ---------------------------------------------------------------------------------------------------


def rd_groups(merchant: Organisation, day: date) -> dict[tuple[str, str], list[int]]:
    """The day's ZM lines summed by (交易代码, 支付卡类型) as ``rd._Accumulator`` sums them: count, amount 借
    (settlement < 0), amount 贷, fee 借, fee 贷, net settlement. Rows whose fee SQL leaves to Python (an amount
    from 10^12 fen, an original of another merchant) are summed from ``settle_line``."""
    rule = fee_return_rule()
    params = {"merchant_id": merchant.pk, "day": day, "proportional": rule == FeeReturn.PROPORTIONAL}
    sql = f"""
        SELECT {_txn_code("s.txn_type")}, s.card_type,
               count(*) FILTER (WHERE s.fee IS NOT NULL),
               coalesce(sum(s.amount) FILTER (WHERE s.settlement < 0), 0),
               coalesce(sum(s.amount) FILTER (WHERE s.settlement >= 0), 0),
               coalesce(sum(-s.fee) FILTER (WHERE s.fee < 0), 0),
               coalesce(sum(s.fee) FILTER (WHERE s.fee >= 0), 0),
               coalesce(sum(s.settlement), 0),
               array_agg(s.id) FILTER (WHERE s.fee IS NULL)
        FROM ({_rows_sql(order=False)}) s
        GROUP BY 1, 2
    """
    groups: dict[tuple[str, str], list[int]] = {}
    leftover: list[int] = []
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        for code, card_type, *sums, left in cursor.fetchall():
            groups[(code, card_type)] = [int(value) for value in sums]
            leftover.extend(left or ())
    if leftover:
        from ..ledger import day_transactions
        from .network import REFUND_CODE, TXN_CODES

        book = FeeBook()
        for txn in day_transactions(day, [merchant.pk]).filter(pk__in=leftover).select_related("orig"):
            line = settle_line(txn, book, rule)
            _add(groups, (TXN_CODES.get(line.category, REFUND_CODE), txn.card_type), txn.amount, line.fee,
                 line.settlement)  # fmt: skip
    return groups


def _add(groups: dict, key: tuple[str, str], amount: int, fee: int, settlement: int) -> None:
    sums = groups.setdefault(key, [0, 0, 0, 0, 0, 0])
    sums[0] += 1
    sums[1 if settlement < 0 else 2] += amount
    if fee < 0:
        sums[3] -= fee
    else:
        sums[4] += fee
    sums[5] += settlement


def _row(label: str, sums: list[int]) -> RDRow:
    count, amount_debit, amount_credit, fee_debit, fee_credit, net = sums
    return RDRow(
        label, count, amount_debit, amount_credit, fee_debit, fee_credit, -net if net < 0 else 0, net if net > 0 else 0
    )


def _total(rows: tuple[RDRow, ...]) -> RDRow:
    columns = [0] * 7
    for row in rows:
        for index, value in enumerate((row.count, *row.amounts())):
            columns[index] += value
    return RDRow(TOTAL_LABEL, *columns)


def build_rd_report(
    merchant: Organisation, day: date, *, acquirer_code: str, merchant_name: str, generated_date: date
) -> RDReport:
    """``reconfiles.build_rd`` of the day's ZM lines, from :func:`rd_groups` instead of a million records."""
    by_code: dict[str, list[int]] = {}
    card_of = dict(CARD_LABELS)  # None: the other cards' label
    by_card: dict[str, list[int]] = {label: [0] * 6 for _, label in CARD_LABELS}
    for (code, card_type), sums in rd_groups(merchant, day).items():
        if not sums[0]:
            continue
        for target in (by_code.setdefault(code, [0] * 6), by_card[card_of.get(card_type, card_of[None])]):
            for index, value in enumerate(sums):
                target[index] += value
    type_rows = tuple(_row(TXN_CODE_LABELS.get(code, code or "其他"), by_code[code]) for code in sorted(by_code))
    card_rows = tuple(_row(label, by_card[label]) for _, label in CARD_LABELS)
    return RDReport(
        mer_id=merchant.code,
        acquirer_code=acquirer_code,
        merchant_name=merchant_name,
        settle_date=day,
        generated_date=generated_date,
        by_type=type_rows,
        type_total=_total(type_rows),
        by_card=card_rows,
        card_total=_total(card_rows),
    )
