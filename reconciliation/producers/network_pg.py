"""The PostgreSQL fast path of the ZM file and the RD summary: the database reads and prices, Python writes the lines.

The Python path (``network.zm_records_for`` → ``ledger.settle_line`` → the ZM codec) costs ~30 µs a line, ~30 s for a
merchant day of a million transactions. Here one ``COPY (SELECT …) TO STDOUT`` sends each row's variable fields,
compact (~160 bytes a row, not a 609-byte line), with the fee of :func:`ledger.signed_fee_sql` (the same
half-up rounding, minimum, maximum and refund fee-return rule as ``settle_line``). Python writes the lines a batch
of rows at a time while the backend produces the next ones, so the two processes work side by side, and without a
Python step per row or field: the rows' fields (one ``split``), the line's constant bytes (the codec's own) and the
fields a line repeats are zipped into one tuple a line and packed by one ``struct`` format, whose ``Ns`` pads with
NUL (a space after one ``translate``) and cuts where ``zm_record`` cuts. Amounts come as ``10^12 + n``, so that
their text is the 12 zero-padded digits after a leading ``1`` (no ``lpad`` in SQL), which stands on the separator
before the amount; the fee and settlement as ``10^12 + |n|`` (``D``) or ``2 × 10^12 + n`` (``C``, zero signs
included), whose leading digit becomes the sign; both for a whole batch at once, by strided slices of its bytes.

The result is byte-identical to the Python path (tests/integration/test_zm_fast_path.py). A row the template cannot
write exactly as the codec would goes through ``zm_record`` + the codec (so errors are the same too):

* a row SQL does not price or time (a fee it leaves to ``settle_line``: an amount from 10^12 fen, an original of
  another merchant; a ``traceTime`` of ten characters not all ASCII) comes with a JSON array of the row;
* a row Python finds not plain (a byte outside printable ASCII in any field: Chinese in ``reqReserved``, a control
  character; a backslash, which the COPY escapes as it does NULL; a card number with more than ten digits; a
  ten-digit ``traceTime`` that is no valid ``MMDDhhmmss``) is rebuilt from its fields, which the COPY carries whole.

Every other field is then printable ASCII, so the UTF-8 bytes of the COPY are the GBK bytes of the file.
"""

from __future__ import annotations

import json
import re
import struct
from collections import deque
from collections.abc import Iterator
from datetime import date, datetime
from itertools import repeat, starmap

from django.db import connection, transaction
from django.db.models import Q

from payments.gateway.acp.reconfiles import RecordError
from payments.gateway.acp.reconfiles.layout import ZM_FIELDS, ZM_LINE_LENGTH
from payments.gateway.acp.reconfiles.rd import CARD_LABELS, TOTAL_LABEL, TXN_CODE_LABELS, RDReport, RDRow
from payments.gateway.acp.reconfiles.zm import ZM_CODEC, ZMRecord
from payments.models import Transaction
from payments.settlement import business_tz
from portal.accounts.models import Organisation
from portal.core.pgcopy import copy_out_batches

from ..choices import FeeReturn
from ..ledger import (
    AMOUNT_LIMIT,
    REFUND_TYPES,
    SETTLED_TYPES,
    VOID_TYPES,
    FeeBook,
    SettleLine,
    category_of,
    fee_return_rule,
    settle_line,
    signed_fee_sql,
)
from ..models import FeeRate

BATCH_ROWS = 512  # a batch's lines (≈ 300 KB) and their copies stay in the core's L2 cache
CRLF = b"\r\n"  # the line end of the Python writer (iter_zm_lines' default)
MAX_RATE_BP = 1_000_000  # 2 × amount (< 10^12) × rate stays within bigint
E12 = AMOUNT_LIMIT  # 10^12: an amount is sent as E12 + n, a signed amount as E12 + |n| (D) or 2 × E12 + n (C)
LINE_BYTES = ZM_LINE_LENGTH + len(CRLF)


def _in(values) -> str:
    return "(" + ", ".join(f"'{value}'" for value in sorted(values)) + ")"


def _literal(text: str) -> str:
    """A SQL string literal inside a statement that also takes ``%(name)s`` parameters."""
    return "'" + text.replace("'", "''").replace("%", "%%") + "'"


def _txn_code(txn_type: str) -> str:
    """network.TXN_CODES: S22 payment, S31 void, S30 refund."""
    return f"CASE WHEN {txn_type} IN {_in(VOID_TYPES)} THEN 'S31' WHEN {txn_type} = '04' THEN 'S30' ELSE 'S22' END"


def _trans_time(trace_time: str, txn_time: str, tz: str) -> str:
    """``network._trace_time``: the stored traceTime when it is ten digits, else txnTime in Beijing time.

    Ten ASCII digits come as they are: Python checks a batch of them at once against the codec's ``MMDDhhmmss``
    rule. NULL for ten characters that are not all ASCII (``str.isdigit`` takes other digits too): Python gets the
    whole row.
    """
    return (
        f"CASE WHEN octet_length({trace_time}) = 10 AND ltrim({trace_time}, '0123456789') = '' THEN {trace_time} "
        f"WHEN length({trace_time}) = 10 AND octet_length({trace_time}) > 10 THEN NULL "
        f"ELSE to_char({txn_time} AT TIME ZONE {_literal(tz)}, 'MMDDHH24MISS') END"
    )


def _rows_sql(merchant: Organisation, book: FeeBook, *, order: bool = True) -> str:
    """The merchant day's rows with what their lines need, the signed fee included (parameters ``merchant_id``,
    ``day``, ``proportional``), in transmission order; ``rev`` is true for voids and refunds.

    Two layers, so that each expression is computed once: the inner query reads (in order through the index
    ``txn_merchant_settle_time``, no sort) and joins the original, the outer one adds the fee of
    :func:`ledger.signed_fee_sql` (the merchant's rates as literals; a payment evaluates only its own branch) and
    the times (``OFFSET 0`` fences it). The acquirer's code is a literal for the merchant's own acquirer. Text comes
    whole: Python cuts it as ``zm_record`` does.
    """
    tz = business_tz().key
    fee = signed_fee_sql(
        row=lambda column: f"i.{column}", orig=lambda column: f"i.o_{column}", reversal="i.rev",
        rates=book.class_rates(merchant.pk), proportional_param="proportional",
    )  # fmt: skip
    acquirer = "(SELECT a.code FROM accounts_organisation a WHERE a.id = t.acquirer_id)"
    code = Organisation.objects.filter(pk=merchant.acquirer_id).values_list("code", flat=True).first()
    if code is not None:
        acquirer = f"CASE WHEN t.acquirer_id = {int(merchant.acquirer_id)} THEN {_literal(code)} ELSE {acquirer} END"
    return f"""
        SELECT i.*, {fee} AS fee, {_trans_time("i.trace_time", "i.txn_time", tz)} AS trans_time,
               CASE WHEN i.o_id IS NULL THEN ''
                    ELSE {_trans_time("i.o_trace_time", "i.o_txn_time", tz)} END AS o_trans_time
        FROM (
            SELECT t.id, t.merchant_id, t.acquirer_id, t.txn_time, t.txn_type, t.txn_sub_type, t.biz_type,
                   t.channel_type, t.amount, t.query_id, t.trace_no, t.trace_time, t.orig_query_id, t.orig_id,
                   t.card_masked, t.card_type, t.order_id, t.req_reserved, {acquirer} AS acquirer_code,
                   o.id AS o_id, o.merchant_id AS o_merchant_id, o.amount AS o_amount,
                   o.card_type AS o_card_type, o.trace_no AS o_trace_no, o.trace_time AS o_trace_time,
                   o.txn_time AS o_txn_time, o.query_id AS o_query_id, o.order_id AS o_order_id,
                   t.txn_type IN {_in(VOID_TYPES | REFUND_TYPES)} AS rev
            FROM payments_transaction t
            LEFT JOIN payments_transaction o ON o.id = t.orig_id
            WHERE t.merchant_id = %(merchant_id)s AND t.settle_date = %(day)s AND t.status = 'success'
              AND t.txn_type IN {_in(SETTLED_TYPES)}
            {"ORDER BY t.txn_time, t.id" if order else "OFFSET 0"}
        ) i
        OFFSET 0
    """


# --- the ZM lines ---------------------------------------------------------------------------------------------------

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


def _signed_fee(expr: str) -> str:
    """``E12 + |n|`` for a ``D`` amount (zero included), ``2 × E12 + n`` for a ``C`` one; NULL for NULL.

    A fee SQL computes is within 12 digits when the row's amount is (:data:`_PRICED`): fees lie between zero and the
    amount (available() refuses negative rate bounds), a settlement between ± the amount.
    """
    return f"CASE WHEN {expr} > 0 THEN {expr} + {2 * E12} ELSE {E12} - {expr} END"


# The signed settlement (payment: amount + fee, never below zero; void or refund: fee − amount) as _signed_fee's "C"
# encoding, NULL when the amount or the fee is.
_SETTLEMENT = (
    f"CASE WHEN s.amount >= {E12} OR s.fee IS NULL THEN NULL WHEN NOT s.rev THEN s.amount + s.fee + {2 * E12} "
    f"WHEN s.fee < s.amount THEN s.amount - s.fee + {E12} ELSE s.fee - s.amount + {2 * E12} END"
)

# Rows SQL prices and times (else it hands them over whole, as a JSON array): an amount within 12 digits (amounts
# are positive: txn_amount_positive), a fee it computes (not an original of another merchant's), times it resolves.
# Each failing condition also leaves a NULL in the row's fields, so Python finds the row without another test.
_PRICED = f"s.amount < {E12} AND s.fee IS NOT NULL AND s.trans_time IS NOT NULL AND s.o_trans_time IS NOT NULL"

# What the COPY sends, in line order: (ZM field, SQL over the rows ``s``). NULL comes as ``\\N``, which no plain
# row holds. Amounts take 13 bytes: the signed ones their own (sign + 12 digits), the amount its 12 digits and the
# separator before them. The transaction code comes from the type (Python). The last two fields are not written:
# they let Python rebuild a row.
_SENT = (
    ("acquirer_code", "s.acquirer_code"),
    ("trace_no", "s.trace_no"),
    ("trans_time", "s.trans_time"),
    ("pan", "s.card_masked"),
    ("amount", f"CASE WHEN s.amount < {E12} THEN s.amount + {E12} END"),
    ("terminal_type", "s.channel_type"),
    ("query_id", "coalesce(s.query_id, '')"),
    ("order_id", "s.order_id"),
    ("pay_card_type", "s.card_type"),
    ("orig_trace_no", "coalesce(s.o_trace_no, '')"),
    ("orig_trans_time", "s.o_trans_time"),
    ("merchant_fee", _signed_fee("s.fee")),
    ("settle_amount", _SETTLEMENT),
    ("txn_type", "s.txn_type"),
    ("txn_sub_type", "s.txn_sub_type"),
    ("biz_type", "s.biz_type"),
    ("orig_query_id", "CASE WHEN s.orig_query_id <> '' THEN s.orig_query_id ELSE coalesce(s.o_query_id, '') END"),
    ("mer_reserved", "s.req_reserved"),
    ("orig_order_id", "coalesce(s.o_order_id, '')"),
    ("o_id", "coalesce(s.o_id, 0)"),  # the original, if any
    ("row_json", f"CASE WHEN {_PRICED} THEN '' ELSE json_build_array({', '.join(f's.{c}' for c in _JSON_COLUMNS)})"
     "::text END"),
)  # fmt: skip
# network.TXN_CODES by type (the file holds these types only): S22 payment, S31 void, S30 refund.
_TXN_CODES = {**{code.encode(): b"S31" for code in VOID_TYPES}, b"04": b"S30"}
_NAMES = tuple(name for name, _ in _SENT)
_FIELD = {field.attr: field for field in ZM_FIELDS}
_WIDE = ("amount", "merchant_fee", "settle_amount")  # sent as 13 digits
# Written again further on: the sender code is the acquirer code, the net amount the settlement.
_REPEATED = {"sender_code": "acquirer_code", "net_amount": "settle_amount"}
# Fields written without the cut zm_record makes elsewhere ([:6], [:11], _fit …): the schema keeps them within
# their width (struct would cut a longer value where the codec refuses it). Checked by available().
_FITTING = {"card_masked": "pan", "query_id": "query_id", "card_type": "pay_card_type", "txn_type": "txn_type",
            "orig_query_id": "orig_query_id", "trace_time": "trans_time"}  # fmt: skip


def available() -> bool:
    """True on PostgreSQL when every fee rate is non-negative and within bigint arithmetic, and the schema fits
    the template."""
    return (
        connection.vendor == "postgresql"
        and all(Transaction._meta.get_field(name).max_length <= _FIELD[attr].width for name, attr in _FITTING.items())
        and not FeeRate.objects.filter(Q(rate_bp__gt=MAX_RATE_BP) | Q(min_fee__lt=0) | Q(max_fee__lt=0)).exists()
    )


def zm_copy_sql(merchant: Organisation, book: FeeBook) -> str:
    """``COPY (…) TO STDOUT``: the fields of :data:`_SENT` per row, in the text format (cheaper for the backend than
    CSV) with a control character (0x02) as delimiter: plain fields (printable ASCII but the backslash) come as they
    are; a backslash, NULL (``\\N``), a control character or the delimiter in a field come escaped."""
    select = f"SELECT {', '.join(sql for _, sql in _SENT)} FROM ({_rows_sql(merchant, book)}) s"
    return f"COPY ({select}) TO STDOUT WITH (FORMAT text, DELIMITER E'\\x02')"


# COPY's text format: a backslash and a character stand for one character (``\\N``, alone, for NULL).
_TEXT_TOKEN = re.compile(r"\\(.)|(\x02)|([^\\\x02]+)", re.DOTALL)
_UNESCAPED = {"b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}


def _text_fields(text: str) -> list[str | None]:
    """The fields of one row of COPY's text format (delimiter 0x02, without its LF), escapes undone."""
    fields: list[str | None] = []
    parts: list[str] = []
    for escaped, delimiter, plain in [*_TEXT_TOKEN.findall(text), ("", "\x02", "")]:
        if delimiter:
            fields.append(None if parts == ["\\N"] else "".join(parts))
            parts = []
        elif escaped:
            parts.append("\\N" if escaped == "N" else _UNESCAPED.get(escaped, escaped))
        else:
            parts.append(plain)
    return fields


def merchant_simple(merchant: Organisation) -> bool:
    """The merchant's code and MCC are written as constants: printable ASCII that fits its field."""
    code, mcc = merchant.code or "", merchant.mcc or ""
    return all(text.isascii() and text.isprintable() for text in (code, mcc)) and len(code) <= 15 and len(mcc) <= 4


# Bytes of a plain row: printable ASCII but the backslash, the delimiter and the row's LF. Anything else (the
# backslash of an escape or of NULL, a control character, UTF-8 of non-ASCII text) makes the row one Python writes.
_PLAIN = bytes(range(0x20, 0x7F)).replace(b"\\", b"") + b"\x02\n"
_NOT_PLAIN = re.compile(rb"[^ -\[\]-~\x02\n]")
_DIGITS = b"0123456789"
_ZERO_DIGITS = bytes.maketrans(_DIGITS, b"0" * 10)
_NOT_DIGITS = bytes(b for b in range(256) if b not in _DIGITS and b != 0x02)
_SIGNS = bytes.maketrans(b"12", b"DC")
_PADDING = bytes.maketrans(b"\x00", b" ")  # struct pads with NUL, which PostgreSQL text never holds
# _fixed._check_time: MMDD within the month (0229 included), hh < 24, mm and ss < 60.
_TIME = (
    rb"(?:(?:0[1-9]|1[0-2])(?:0[1-9]|[12][0-9])|(?:0[13-9]|1[0-2])30|(?:0[13578]|1[02])31)"
    rb"(?:[01][0-9]|2[0-3])[0-5][0-9][0-5][0-9]"
)
_VALID_TIME = re.compile(_TIME)
_VALID_TIMES = re.compile(rb"(?:" + _TIME + rb"\x02)*")
_VALID_TIMES_OR_BLANK = re.compile(rb"(?:(?:" + _TIME + rb")?\x02)*")
# A plain row of the right shape, written in place of a row Python writes (its line is then replaced).
_STAND_IN = b"\x02".join(b"0101000000" if name == "trans_time" else b"" for name in _NAMES) + b"\n"


class _LineWriter:
    """Turns batches of COPY rows into CRLF lines at C speed: the rows' fields, the line's constants (the codec's
    own bytes) and the repeated fields are zipped into one tuple a line and packed by one ``struct`` format (``Ns``
    pads with NUL and cuts, as ``zm_record`` cuts); then, a batch at a time, NUL becomes a space and the leading
    digit of the amounts a separator or a sign (strided slices of the batch's bytes, every line being
    ``LINE_BYTES`` long)."""

    def __init__(self, merchant: Organisation, book: FeeBook, rule: str) -> None:
        self.merchant, self.book, self.rule = merchant, book, rule
        self.width = len(_SENT)
        self.index = {name: i for i, name in enumerate(_NAMES)}
        line = ZM_CODEC.format_record(ZMRecord(mcc=merchant.mcc, mer_id=merchant.code)) + CRLF
        spans = sorted(
            [(_FIELD[name].end - 13 if name in _WIDE else _FIELD[name].start, _FIELD[name].end, name)
             for name in _NAMES if name in _FIELD]
            + [(_FIELD[name].start, _FIELD[name].end, name) for name in (*_REPEATED, "txn_code")]
        )  # fmt: skip
        self.layout: list[tuple[str, object]] = []  # ("row" | "column" | "code" | "constant", index or bytes)
        formats, at = [], 0
        for start, end, name in [*spans, (len(line), len(line), None)]:
            if start > at:  # the constant bytes between two fields: pad bytes when blank, else an argument
                constant = line[at:start]
                if constant.strip(b" "):
                    formats.append(f"{len(constant)}s")
                    self.layout.append(("constant", constant))
                else:
                    formats.append(f"{len(constant)}x")
            if name is None:
                break
            formats.append(f"{end - start}s")
            if name == "txn_code":
                self.layout.append(("code", self.index["txn_type"]))
            elif name in _REPEATED:
                self.layout.append(("column", self.index[_REPEATED[name]]))
            else:
                self.layout.append(("row", None))
            at = end
        formats += ["0s", "0s"]  # o_id and row_json: read, not written
        self.layout += [("row", None), ("row", None)]
        self.pack_into = struct.Struct("".join(formats)).pack_into
        self.amount_lead = _FIELD["amount"].start - 1  # the separator the amount's leading digit stands on
        self.signs = [_FIELD[name].start for name in ("merchant_fee", "settle_amount", "net_amount")]

    def lines(self, rows: list, first: int) -> tuple[bytearray, RecordError | None]:
        """The lines of ``rows`` (row ``first`` of the file first), and the codec's error of the first row it
        refuses, if any (the lines are then those before it)."""
        raw = b"\x02".join(rows)  # each row ends with LF: the last field of every row keeps it (not written)
        odd: set[int] = set()
        if raw.translate(None, _PLAIN):  # some row is not plain: find it, write a stand-in for now
            odd = self.not_plain(rows)
            raw = b"\x02".join(_STAND_IN if i in odd else row for i, row in enumerate(rows))
        fields = raw.split(b"\x02")
        column = self.column(fields)
        cards = column("pan")
        if b"0" * 11 in b"\x02".join(cards).translate(_ZERO_DIGITS, _NOT_DIGITS):  # a card number in clear
            odd.update(i for i, card in enumerate(cards) if len(card) - len(card.translate(None, _DIGITS)) > 10)
        for name, pattern in (("trans_time", _VALID_TIMES), ("orig_trans_time", _VALID_TIMES_OR_BLANK)):
            times = column(name)
            if not pattern.fullmatch(b"\x02".join(times) + b"\x02"):  # the codec refuses this time
                odd.update(i for i, time in enumerate(times) if time and not _VALID_TIME.fullmatch(time))
        each = iter(fields)
        sources = [
            each if kind == "row"
            else repeat(value) if kind == "constant"
            else map(_TXN_CODES.get, fields[value :: self.width], repeat(b"S22")) if kind == "code"
            else iter(fields[value :: self.width])
            for kind, value in self.layout
        ]  # fmt: skip
        packed = bytearray(len(rows) * LINE_BYTES)
        offsets = range(0, len(packed), LINE_BYTES)
        deque(starmap(self.pack_into, zip(repeat(packed), offsets, *sources, strict=False)), maxlen=0)
        buf = packed.translate(_PADDING)
        buf[self.amount_lead :: LINE_BYTES] = b" " * len(rows)
        for at in self.signs:
            buf[at::LINE_BYTES] = buf[at::LINE_BYTES].translate(_SIGNS)
        for i in sorted(odd):
            try:
                buf[i * LINE_BYTES : (i + 1) * LINE_BYTES] = self.odd_line(bytes(rows[i]), first + i)
            except RecordError as error:
                return buf[: i * LINE_BYTES], error
        return buf, None

    @staticmethod
    def not_plain(rows: list) -> set[int]:
        """The indexes of the ``rows`` holding a byte a plain row does not hold."""
        return {i for i, row in enumerate(rows) if _NOT_PLAIN.search(row)}

    def column(self, fields: list[bytes]):
        """A function giving one field of every row of the batch (the fields of all rows, in order)."""
        return lambda name: fields[self.index[name] :: self.width][: len(fields) // self.width]

    def odd_line(self, row: bytes, index: int) -> bytes:
        """The line of a row the template does not write, by ``zm_record`` and the codec."""
        values = dict(zip(_NAMES, _text_fields(row.decode("utf-8").removesuffix("\n")), strict=True))
        if values["row_json"]:
            return _python_line(dict(zip(_JSON_COLUMNS, json.loads(values["row_json"]), strict=True)), self.merchant,
                                self.book, self.rule, index)  # fmt: skip
        # A priced row (no NULL, amounts within 12 digits) with text the template cannot write: its fields are the
        # ledger's values (traceTime already resolved) and the fee is SQL's, equal to settle_line's.
        txn = Transaction(
            merchant_id=self.merchant.pk,
            txn_type=values["txn_type"],
            txn_sub_type=values["txn_sub_type"],
            biz_type=values["biz_type"],
            channel_type=values["terminal_type"],
            amount=int(values["amount"]) - E12,
            query_id=values["query_id"],
            trace_no=values["trace_no"],
            trace_time=values["trans_time"],
            orig_query_id=values["orig_query_id"],
            card_masked=values["pan"],
            card_type=values["pay_card_type"],
            order_id=values["order_id"],
            req_reserved=values["mer_reserved"],
        )
        txn.merchant = self.merchant
        txn.acquirer = Organisation(code=values["acquirer_code"])
        if int(values["o_id"]):
            txn.orig = Transaction(
                id=int(values["o_id"]),
                trace_no=values["orig_trace_no"],
                trace_time=values["orig_trans_time"],
                query_id="",
                order_id=values["orig_order_id"],
            )
        fee, settlement = (_unsigned(values[name]) for name in ("merchant_fee", "settle_amount"))
        return _codec_line(txn, SettleLine(category_of(txn.txn_type), txn.amount, fee, settlement), index)


def _unsigned(text: str) -> int:
    """The signed amount of the fee's or the settlement's encoding (``_signed_fee``, ``_SETTLEMENT``)."""
    value = int(text)
    return value - 2 * E12 if value >= 2 * E12 else E12 - value


def _codec_line(txn: Transaction, line: SettleLine, index: int) -> bytes:
    """The Python path's line: ``zm_record`` written by the codec."""
    from .network import zm_record

    return ZM_CODEC.format_record(zm_record(txn, line), index) + CRLF


def _python_line(values: dict, merchant: Organisation, book: FeeBook, rule: str, index: int) -> bytes:
    """A row the SQL handed over: rebuild its ledger objects from the row's values, write it as the Python path."""
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
    return _codec_line(txn, settle_line(txn, book, rule), index)


def zm_chunks(merchant: Organisation, day: date) -> Iterator[bytes]:
    """The ZM file of the merchant day as byte chunks (CRLF lines), streamed from ``COPY … TO STDOUT``."""
    if not merchant_simple(merchant):
        raise ValueError("the merchant's code or MCC is not printable ASCII: use the Python path")
    rule = fee_return_rule()
    book = FeeBook()
    writer = _LineWriter(merchant, book, rule)
    sql = zm_copy_sql(merchant, book)  # reads the rates and the acquirer before the COPY holds the connection
    params = {"merchant_id": merchant.pk, "day": day, "proportional": rule == FeeReturn.PROPORTIONAL}
    first = 0
    with transaction.atomic(), connection.cursor() as cursor:
        # JIT-compiled expressions, without inlining and without compiled tuple deforming: both cost more compile
        # time than they save here (backend time for a million rows: 2.25 s with PostgreSQL's defaults, 2.08 s
        # without inlining, 1.99 s without either; JIT off: 2.33 s).
        cursor.execute("SET LOCAL jit_inline_above_cost = -1")
        cursor.execute("SET LOCAL jit_tuple_deforming = off")
        for batch in copy_out_batches(cursor.cursor, sql, params, size=BATCH_ROWS):
            chunk, error = writer.lines(batch, first)
            if chunk:
                yield chunk
            if error:
                raise error
            first += len(batch)


# --- RD summary ---------------------------------------------------------------------------------------------------


def rd_groups(merchant: Organisation, day: date) -> dict[tuple[str, str], list[int]]:
    """The day's ZM lines summed by (交易代码, 支付卡类型) as ``rd._Accumulator`` sums them: count, amount 借
    (settlement < 0), amount 贷, fee 借, fee 贷, net settlement. Rows whose fee SQL leaves to Python (an amount
    from 10^12 fen, an original of another merchant) are summed from ``settle_line``."""
    rule = fee_return_rule()
    book = FeeBook()
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
        FROM (
            SELECT r.*, CASE WHEN r.rev THEN r.fee - r.amount ELSE r.amount + r.fee END AS settlement
            FROM ({_rows_sql(merchant, book, order=False)}) r
            OFFSET 0
        ) s
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
