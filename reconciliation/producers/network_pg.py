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

from payments.gateway.acp.reconfiles.rd import CARD_LABELS, TXN_CODE_LABELS, RDReport, RDRow
from payments.gateway.acp.reconfiles.zm import ZM_CODEC
from payments.models import Transaction
from payments.settlement import business_tz
from portal.accounts.models import Organisation

from ..choices import FeeReturn
from ..ledger import AMOUNT_LIMIT, FeeBook, fee_rates_sql, fee_return_rule, settle_line, settle_sql
from ..models import FeeRate

# The codec's time check (_fixed._time_ok): month 01–12, day within the month (29 in February), hh < 24, mm, ss < 60.
VALID_TIME_RE = (
    "^((0[13578]|1[02])(0[1-9]|[12][0-9]|3[01])|(0[469]|11)(0[1-9]|[12][0-9]|30)|02(0[1-9]|[12][0-9]))"
    "([01][0-9]|2[0-3])[0-5][0-9][0-5][0-9]$"
)
BATCH_ROWS = 4096
MAX_RATE_BP = 1_000_000  # 2 × amount (< 10^12) × rate stays within bigint


def available() -> bool:
    """True when the database can build the lines (PostgreSQL) and every fee rate is within bigint arithmetic."""
    return connection.vendor == "postgresql" and not FeeRate.objects.filter(rate_bp__gt=MAX_RATE_BP).exists()


def _signed(expr: str, zero_sign: str, width: int = 13) -> str:
    """An ``X+n`` field: D (negative) or C, then ``width - 1`` digits; a zero takes the field's zero sign."""
    digits = width - 1
    return (
        f"CASE WHEN {expr} < 0 THEN 'D' || lpad((-{expr})::text, {digits}, '0') "
        f"WHEN {expr} > 0 THEN 'C' || lpad(({expr})::text, {digits}, '0') "
        f"ELSE '{zero_sign}{'0' * digits}' END"
    )


def _trans_time(alias: str, tz: str) -> str:
    """``network._trace_time``: the stored traceTime when it is ten digits, else txnTime in Beijing time."""
    return (
        f"CASE WHEN {alias}.trace_time ~ '^[0-9]{{10}}$' THEN {alias}.trace_time "
        f"ELSE to_char({alias}.txn_time AT TIME ZONE '{tz}', 'MMDDHH24MISS') END"
    )


def _base_query(tz: str) -> str:
    """The day's rows with what the lines need, fee and settlement computed, in transmission order.

    Parameters: ``merchant_id``, ``day``, ``proportional``. The inner query sorts narrow rows (text fields already
    cut to what the line can hold); its ORDER BY keeps PostgreSQL from pulling it up, so the outer layers keep the
    order and compute each expression once.
    """
    fee, settlement = settle_sql(txn="i", amount="i.amount", base_fee="i.base_fee", basis_amount="i.basis_amount")
    return f"""
        SELECT i.*, {fee} AS fee, {settlement} AS settlement,
               {_trans_time("i", tz)} AS trans_time,
               CASE WHEN i.o_id IS NULL THEN '' ELSE {_trans_time("o", tz)} END AS o_trans_time
        FROM (
            SELECT t.id, t.merchant_id, t.acquirer_id, t.txn_time, t.txn_type, t.txn_sub_type, t.biz_type,
                   t.channel_type, t.amount, t.query_id, t.trace_no, t.trace_time, t.orig_query_id, t.orig_id,
                   t.card_masked, t.card_type, left(t.order_id, 32) AS order_id,
                   left(t.req_reserved, 32) AS req_reserved, a.code AS acquirer_code,
                   o.id AS o_id, o.merchant_id AS o_merchant_id, o.amount AS o_amount, o.card_type AS o_card_type,
                   o.trace_no AS o_trace_no, o.trace_time AS o_trace_time, o.txn_time AS o_txn_time,
                   o.query_id AS o_query_id, left(o.order_id, 32) AS o_order_id,
                   b.amount AS basis_amount, {fee_rates_sql.base_fee("b", "r")} AS base_fee
            FROM payments_transaction t
            JOIN accounts_organisation a ON a.id = t.acquirer_id
            LEFT JOIN payments_transaction o ON o.id = t.orig_id
            CROSS JOIN ({fee_rates_sql()}) r
            CROSS JOIN LATERAL ({fee_rates_sql.basis("t", "o")}) b
            WHERE t.merchant_id = %(merchant_id)s AND t.settle_date = %(day)s AND t.status = 'success'
              AND t.txn_type IN ('01', '03', '04', '31', '33')
            ORDER BY t.txn_time, t.id
        ) i
        LEFT JOIN LATERAL (SELECT i.o_trace_time AS trace_time, i.o_txn_time AS txn_time) o ON true
        OFFSET 0
    """


# The fields the SQL writes as text: printable ASCII means one byte a character, as the codec's fast path writes them.
_ASCII_FIELDS = (
    "s.order_id, s.req_reserved, s.card_masked, s.trace_no, s.trace_time, s.txn_type, s.txn_sub_type, s.biz_type, "
    "s.channel_type, s.query_id, s.card_type, s.orig_query_id, s.acquirer_code, s.o_trace_no, s.o_trace_time, "
    "s.o_query_id, s.o_order_id"
)


def _simple(mer_id: str, mcc: str) -> str:
    """True for a row the SQL writes exactly as the Python path does (else the row goes to Python as JSON)."""
    del mer_id, mcc  # checked once in Python (zm_chunks)
    return f"""(
        concat({_ASCII_FIELDS}) ~ '^[ -~]*$'
        AND length(translate(s.card_masked, '0123456789', '')) >= length(s.card_masked) - 10
        AND s.amount < {AMOUNT_LIMIT} AND s.base_fee IS NOT NULL
        AND (s.o_id IS NULL OR s.o_merchant_id = s.merchant_id)
        AND s.trans_time ~ '{VALID_TIME_RE}' AND (s.o_id IS NULL OR s.o_trans_time ~ '{VALID_TIME_RE}')
    )"""


def _line(mer_id: str, mcc: str) -> str:
    """The 607-byte ZM line (formats.md §6.4), field by field as ``network.zm_record`` fills a ZMRecord."""
    txn_code = "CASE s.txn_type WHEN '31' THEN 'S31' WHEN '33' THEN 'S31' WHEN '04' THEN 'S30' ELSE 'S22' END"
    settlement = _signed("s.settlement", "C")
    orig_query_id = "CASE WHEN s.orig_query_id <> '' THEN s.orig_query_id ELSE coalesce(s.o_query_id, '') END"
    mer = connection.ops.quote_name("x")  # placeholder to keep literals out of f-string quoting
    del mer
    mer_id_lit = _literal(mer_id.ljust(15))
    mcc_lit = _literal(mcc.ljust(4))
    parts = [
        txn_code,
        "rpad(s.acquirer_code, 11)",  # 代理机构标识码 (rpad cuts to 11 as acquirer.code[:11])
        "rpad(s.acquirer_code, 11)",  # 发送机构标识码
        "rpad(s.trace_no, 6)",
        "s.trans_time",
        "rpad(s.card_masked, 19)",
        "lpad(s.amount::text, 12, '0')",
        mcc_lit,
        "rpad(s.channel_type, 2)",
        "rpad(coalesce(s.query_id, ''), 21)",
        "'  '",  # 支付方式(旧)
        "rpad(s.order_id, 32)",
        "rpad(s.card_type, 2)",
        "rpad(coalesce(s.o_trace_no, ''), 6)",
        "rpad(s.o_trans_time, 10)",
        _signed("s.fee", "D"),
        settlement,
        "'" + " " * 4 + " " + " " * 15 + "'",  # 支付方式, 集团商户代码
        "rpad(s.txn_type, 2)",
        "rpad(s.txn_sub_type, 2)",
        "rpad(s.biz_type, 6)",
        "'" + " " * 2 + " " + " " * 4 + " " + " " * 32 + " " + " " + "'",  # 帐号类型, 账单类型, 账单号码, 交互方式
        f"rpad({orig_query_id}, 21)",
        mer_id_lit,
        "' " + " " + "000000000000000" + " " + " " * 32 + " " + " " + "0" * 12 + "'",  # 分账 … 二级商户分账入账金额
        settlement,  # 清算净额 = settlement
        "'" + " " * 8 + "'",  # 终端号
        "rpad(s.req_reserved, 32)",
        "' " + "0" * 12 + "  " + "0" * 12 + "  " + "0" * 11 + " " + " " * 2 + " " + " " + "'",  # 优惠 … 交易介质
        "rpad(coalesce(s.o_order_id, ''), 32)",
        "'" + " " * 98 + "'",  # 保留使用
    ]
    return " || ' ' || ".join(parts)


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


_JSON_COLUMNS = (
    "id", "merchant_id", "acquirer_id", "acquirer_code", "txn_time", "txn_type", "txn_sub_type", "biz_type",
    "channel_type", "amount", "query_id", "trace_no", "trace_time", "orig_query_id", "orig_id", "card_masked",
    "card_type", "order_id", "req_reserved", "o_id", "o_merchant_id", "o_amount", "o_card_type", "o_trace_no",
    "o_trace_time", "o_txn_time", "o_query_id", "o_order_id",
)  # fmt: skip


def zm_copy_sql(merchant: Organisation) -> str:
    """``COPY (…) TO STDOUT``: one ZM line per row (without its line ending), or a JSON array for a row Python writes.

    CSV with a control character as quote: no line (printable ASCII) and no JSON text (control characters escaped)
    ever holds it, a CR or a LF, so every row is written as is, backslashes included.
    """
    tz = business_tz().key
    select = f"""
        SELECT CASE WHEN {_simple(merchant.code, merchant.mcc)} THEN {_line(merchant.code, merchant.mcc)}
               ELSE json_build_array({", ".join(f"s.{c}" for c in _JSON_COLUMNS)})::text END
        FROM ({_base_query(tz)}) s
    """
    return f"COPY ({select}) TO STDOUT WITH (FORMAT csv, QUOTE E'\\x01', DELIMITER E'\\x02')"


def _merchant_simple(merchant: Organisation) -> bool:
    """The merchant's code and MCC are written as constants: printable ASCII that fits (else: the Python path)."""
    code, mcc = merchant.code, merchant.mcc
    return all(text.isascii() and text.isprintable() for text in (code, mcc)) and len(code) <= 15 and len(mcc) <= 4


def _python_line(row: list, merchant: Organisation, book: FeeBook, rule: str, index: int) -> bytes:
    """A row the SQL left to Python: rebuild the ledger objects from its values and write it as the Python path."""
    from .network import zm_record

    values = dict(zip(_JSON_COLUMNS, row, strict=True))
    orig = None
    if values["o_id"] is not None:
        orig = Transaction(
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
    txn = Transaction(
        id=values["id"],
        merchant_id=values["merchant_id"],
        txn_time=datetime.fromisoformat(values["txn_time"]),
        **{
            name: values[name]
            for name in (
                "txn_type", "txn_sub_type", "biz_type", "channel_type", "amount", "query_id", "trace_no",
                "trace_time", "orig_query_id", "card_masked", "card_type", "order_id", "req_reserved",
            )
        },  # fmt: skip
    )
    txn.merchant = merchant
    txn.acquirer = Organisation(id=values["acquirer_id"], code=values["acquirer_code"])
    txn.orig_id = values["orig_id"]
    if orig is not None:
        txn.orig = orig
    return ZM_CODEC.format_record(zm_record(txn, settle_line(txn, book, rule)), index) + b"\r\n"


def zm_chunks(merchant: Organisation, day: date) -> Iterator[bytes]:
    """The ZM file of the merchant day as byte chunks (CRLF lines), streamed from ``COPY … TO STDOUT``."""
    if not _merchant_simple(merchant):
        raise ValueError("merchant code or MCC is not printable ASCII: use the Python path")
    book, rule = FeeBook(), fee_return_rule()  # read before the COPY holds the connection
    params = {"merchant_id": merchant.pk, "day": day, "proportional": rule == FeeReturn.PROPORTIONAL}
    batch: list = []
    index = 0
    with connection.cursor() as cursor:
        with cursor.cursor.copy(zm_copy_sql(merchant), params) as copy:
            for data in copy:
                if data[0] == 0x5B:  # "[": a row for Python
                    if batch:
                        yield b"".join(batch).replace(b"\n", b"\r\n")
                        batch.clear()
                    yield _python_line(json.loads(bytes(data)), merchant, book, rule, index)
                else:
                    batch.append(data)
                    if len(batch) >= BATCH_ROWS:
                        yield b"".join(batch).replace(b"\n", b"\r\n")
                        batch.clear()
                index += 1
    if batch:
        yield b"".join(batch).replace(b"\n", b"\r\n")


# --- RD summary ---------------------------------------------------------------------------------------------------


def rd_groups(merchant: Organisation, day: date) -> dict[tuple[str, str], list[int]]:
    """The day's ZM lines summed by (交易代码, 支付卡类型) as ``rd._Accumulator`` sums them.

    Values: count, amount 借 (settlement < 0), amount 贷, fee 借, fee 贷, net settlement. Rows the SQL leaves to
    Python in :func:`zm_chunks` (huge amounts, an original of another merchant) are summed from ``settle_line``.
    """
    rule = fee_return_rule()
    params = {"merchant_id": merchant.pk, "day": day, "proportional": rule == FeeReturn.PROPORTIONAL}
    sql = f"""
        SELECT CASE s.txn_type WHEN '31' THEN 'S31' WHEN '33' THEN 'S31' WHEN '04' THEN 'S30' ELSE 'S22' END,
               s.card_type, count(*),
               coalesce(sum(s.amount) FILTER (WHERE s.settlement < 0), 0),
               coalesce(sum(s.amount) FILTER (WHERE s.settlement >= 0), 0),
               coalesce(sum(-s.fee) FILTER (WHERE s.fee < 0), 0),
               coalesce(sum(s.fee) FILTER (WHERE s.fee >= 0), 0),
               coalesce(sum(s.settlement), 0),
               array_agg(s.id) FILTER (WHERE s.fee IS NULL)
        FROM ({_base_query(business_tz().key)}) s
        GROUP BY 1, 2
    """
    sql = sql.replace("ORDER BY t.txn_time, t.id", "ORDER BY t.id")  # order does not matter to sums
    groups: dict[tuple[str, str], list[int]] = {}
    leftover: list[int] = []
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        for code, card_type, *sums, left in cursor.fetchall():
            groups[(code, card_type)] = [int(value) for value in sums]
            leftover.extend(left or ())
    if leftover:
        from .network import TXN_CODES, REFUND_CODE
        from ..ledger import day_transactions

        book = FeeBook()
        # The rows with a NULL fee were counted but not summed: take them out, then add their Python lines.
        qs = day_transactions(day, [merchant.pk]).filter(pk__in=leftover).select_related("orig")
        for txn in qs:
            line = settle_line(txn, book, rule)
            key = (TXN_CODES.get(line.category, REFUND_CODE), txn.card_type)
            sums = groups[key]
            sums[0] -= 1
            _add(groups, key, txn.amount, line.fee, line.settlement)
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
    return RDRow("总计", *columns)


def build_rd_report(
    merchant: Organisation, day: date, *, acquirer_code: str, merchant_name: str, generated_date: date
) -> RDReport:
    """``reconfiles.build_rd`` of the day's ZM lines, from :func:`rd_groups` instead of a million records."""
    by_code: dict[str, list[int]] = {}
    card_of = {code: label for code, label in CARD_LABELS if code is not None}
    by_card: dict[str, list[int]] = {label: [0] * 6 for _, label in CARD_LABELS}
    for (code, card_type), sums in rd_groups(merchant, day).items():
        if not sums[0]:
            continue
        for target in (by_code.setdefault(code, [0] * 6), by_card[card_of.get(card_type, "其他卡")]):
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
