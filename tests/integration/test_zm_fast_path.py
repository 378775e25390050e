"""The PostgreSQL fast path of the ZM file and the RD report gives the Python path's bytes (issue 5 §6 recon_files).

A generated settlement day holds payments, voids and refunds (with and without an original, full and partial),
every card type, fees at the rate's minimum and maximum and exactly on a half fen, a merchant's own rate over the
default, a class without any rate, zero fees and settlements (their signs), a code longer than its field, and rows
the template leaves to the codec (Chinese, control characters, the bytes COPY escapes and a backslash in text
fields, an original of another merchant); a traceTime to derive from txnTime; batches of any size. Marked
``integration`` by the lane's conftest.
"""

from __future__ import annotations

import io
import itertools
import random
import zipfile
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from payments.cards import card_hash, mask_pan
from payments.gateway.acp.reconfiles import RecordError, build_rd, parse_zm, totals, write_rd, write_zm, zm_name
from payments.models import Transaction
from reconciliation.models import FeeRate
from reconciliation.producers import network, network_pg
from reconciliation.services.close import settlement_compute_day
from tests.factories import AcquirerFactory

BJ = ZoneInfo("Asia/Shanghai")
DAY = date(2026, 3, 10)
DAY_START = datetime(2026, 3, 9, 23, 0, tzinfo=BJ)
PAN = "6222021234567890128"
_seq = itertools.count(1)


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.RECON_REFUND_FEE_RETURN = "none"


@pytest.fixture
def rates(merchant_a):
    """Defaults: debit 0.38% (min 10 fen, max 20 yuan), credit 0.60% (max 50 yuan); no 'other' rate (zero).
    Merchant A's own credit rate: 0.55%, min 5 fen, no maximum."""
    FeeRate.objects.create(card_class="debit", rate_bp=38, min_fee=10, max_fee=2000)
    FeeRate.objects.create(card_class="credit", rate_bp=60, min_fee=0, max_fee=5000)
    FeeRate.objects.create(merchant=merchant_a, card_class="credit", rate_bp=55, min_fee=5, max_fee=None)


class Ledger:
    def __init__(self, merchant):
        self.merchant = merchant

    def add(self, *, seconds: int, **fields) -> Transaction:
        n = next(_seq)
        txn_time = DAY_START + timedelta(seconds=seconds)
        values = {
            "merchant": self.merchant,
            "acquirer_id": self.merchant.acquirer_id,
            "order_id": f"ZF{n:010d}",
            "txn_time": txn_time,
            "txn_type": "01",
            "amount": 10000,
            "status": "success",
            "resp_code": "00",
            "query_id": f"7026{n:017d}",
            "trace_no": f"{n % 1000000:06d}",
            "trace_time": txn_time.astimezone(BJ).strftime("%m%d%H%M%S"),
            "settle_date": DAY,
            "card_masked": mask_pan(PAN),
            "card_hash": card_hash(PAN),
            "card_type": "01",
            "source": "sandbox",
        }
        values.update(fields)
        return Transaction.objects.create(**values)

    def reverse(self, orig: Transaction, *, seconds: int, txn_type: str, amount: int, **fields) -> Transaction:
        values = {
            "txn_type": txn_type,
            "txn_sub_type": "00",
            "amount": amount,
            "orig": orig,
            "orig_query_id": orig.query_id,
            "card_type": orig.card_type,
        }
        values.update(fields)
        return self.add(seconds=seconds, **values)


@pytest.fixture
def day_ledger(merchant_a, merchant_b, rates):
    """A day of ~400 rows for merchant A (and rows that must stay out of its file)."""
    rng = random.Random(5)
    ledger = Ledger(merchant_a)
    payments = []
    # Fee edges: debit min (1 fen → min 10, capped by the amount), a half fen (0.38% of 1250 = 4.75 → min 10;
    # 0.38% of 13158 = 50.0004; of 131 = 0.4978), max (20 yuan); credit own rate half up (0.55% of 1 = 0.0055 → 5).
    for seconds, amount, card_type in [
        (1, 1, "01"), (2, 9, "01"), (3, 1250, "01"), (4, 13158, "01"), (5, 131, "01"), (6, 526316, "01"),
        (7, 9_999_999_99, "01"), (8, 1, "02"), (9, 100, "02"), (10, 9091, "02"), (11, 5_000_000, "03"),
        (12, 777, "05"), (13, 10000, ""), (14, 999_999_999_999, "02"),
    ]:  # fmt: skip
        payments.append(ledger.add(seconds=seconds, amount=amount, card_type=card_type))
    for i in range(300):
        card_type = rng.choice(["01", "01", "02", "03", "04", "05", "06", ""])
        amount = max(1, int(rng.lognormvariate(9.2, 1.6)))
        payments.append(ledger.add(seconds=100 + i * 60 + rng.randrange(60), amount=amount, card_type=card_type,
                                   req_reserved=rng.choice(["", "", "memo=1", "a\\b\"c'd,e;f|g"])))  # fmt: skip
    # Preauthorisation completion, the other payment type.
    payments.append(ledger.add(seconds=20000, txn_type="03", amount=4321, card_type="02"))
    # Voids (the whole fee back) and refunds (none back under the 'none' rule), one pointing at nothing.
    for i, orig in enumerate(rng.sample(payments[14:], 60)):
        if i % 3 == 0:
            ledger.reverse(orig, seconds=30000 + i, txn_type=rng.choice(["31", "33"]), amount=orig.amount)
        else:
            ledger.reverse(orig, seconds=30000 + i, txn_type="04", amount=max(1, orig.amount // rng.choice([1, 2, 3])))
    ledger.reverse(payments[0], seconds=40000, txn_type="04", amount=1, card_type="02")
    ledger.add(seconds=40001, txn_type="04", amount=500, card_type="02", orig_query_id="702600000000000000999")
    ledger.add(seconds=40002, txn_type="31", amount=700, card_type="")
    # An original with a blank card type: the refund's own card type classes the fee.
    blank = ledger.add(seconds=40003, amount=88888, card_type="")
    ledger.reverse(blank, seconds=40004, txn_type="04", amount=88888, card_type="01")
    # Rows the SQL leaves to Python: Chinese and a control character in text fields, an original of another
    # merchant, a traceTime to derive from txnTime, a 12-digit amount near the limit.
    ledger.add(seconds=50000, req_reserved="备注：退款原因" * 3, order_id="订单ABC")
    ledger.add(seconds=50001, req_reserved="tab\there\x7fdel", order_id="A" * 40)
    ledger.add(seconds=50002, req_reserved="€uro ½ 😀 emoji", trace_time="")
    ledger.add(seconds=50003, trace_time="12345")
    foreign = Ledger(merchant_b).add(seconds=-86400, amount=30000, card_type="01")
    ledger.reverse(foreign, seconds=50004, txn_type="04", amount=30000)
    ledger.add(seconds=50005, amount=999_999_999_999, card_type="03")
    # Bytes the CSV of the COPY quotes or uses as its delimiter and NULL; a shorter card number; '%' in text.
    ledger.add(seconds=50010, req_reserved="quote\x01sep\x02nul\x04", order_id="100%s %d %%")
    ledger.add(seconds=50011, req_reserved="line\nfeed\r", card_masked="622202******1234")
    # A void of the 1-fen payment: its fee (1 fen) comes back, a zero settlement (sign C); the 'other' card type
    # above has no rate: a zero fee (sign D).
    ledger.reverse(payments[0], seconds=50012, txn_type="31", amount=1)
    # Another acquirer, whose code is longer than the field (zm_record cuts it to 11).
    ledger.add(seconds=50013, acquirer_id=AcquirerFactory(code="ACQ123456789012").pk)
    # Not in A's file: failed, other day, other merchant, a pre-authorisation.
    ledger.add(seconds=50006, status="failed")
    ledger.add(seconds=90000, settle_date=DAY + timedelta(days=1))
    ledger.add(seconds=50007, txn_type="02")
    Ledger(merchant_b).add(seconds=50008)
    # Two rows at the same instant: the id breaks the tie.
    ledger.add(seconds=60000, amount=1)
    ledger.add(seconds=60000, amount=2)
    return ledger


def python_zm(merchant) -> bytes:
    records = network.zm_records_for(merchant, DAY)
    try:
        return write_zm(records)
    finally:
        records.close()  # on a RecordError, close the server-side cursor now, not when the collector gets to it


def python_rd(merchant) -> bytes:
    report = build_rd(
        network.zm_records_for(merchant, DAY),
        mer_id=merchant.code,
        acquirer_code=merchant.acquirer.code,
        merchant_name=network._fit(merchant.name_zh, 60),
        settle_date=DAY,
        generated_date=DAY + timedelta(days=1),
    )
    return write_rd(report)


def test_fast_zm_is_byte_identical_to_the_python_path(merchant_a, day_ledger, monkeypatch):
    # given a day with every kind of row
    expected = python_zm(merchant_a)
    handed_over, priced_by_python = [], []
    codec_line, python_line = network_pg._codec_line, network_pg._python_line
    monkeypatch.setattr(network_pg, "_codec_line", lambda txn, *a: handed_over.append(txn) or codec_line(txn, *a))
    monkeypatch.setattr(
        network_pg, "_python_line", lambda values, *a: priced_by_python.append(values) or python_line(values, *a)
    )
    # when the database writes the file
    fast = b"".join(network_pg.zm_chunks(merchant_a, DAY))
    # then the bytes are the same, line for line
    assert network_pg.available()
    assert fast.split(b"\r\n") == expected.split(b"\r\n")
    assert fast == expected
    # only the rows the template cannot write went through the codec: Chinese, control characters (a tab, DEL, and
    # the bytes PostgreSQL escapes), emoji, a backslash (escaped too), and the foreign original, whose fee only
    # settle_line knows
    odd = ["", "备注：退款原因备注：退款原因备注：退款原因", "tab\there\x7fdel", "€uro ½ 😀 emoji",
           "quote\x01sep\x02nul\x04", "line\nfeed\r"]  # fmt: skip
    backslashed = list(Transaction.objects.filter(merchant=merchant_a, req_reserved__contains="\\"))
    assert backslashed
    assert sorted(txn.req_reserved for txn in handed_over) == sorted(odd + [txn.req_reserved for txn in backslashed])
    assert [values["req_reserved"] for values in priced_by_python] == [""]
    lines = fast.split(b"\r\n")
    assert lines[-1] == b""
    assert {len(line) for line in lines[:-1]} == {607}
    # the signs written in place of the leading digit, zero signs included; the repeated fields repeated
    assert {line[166:167] for line in lines[:-1]} == {line[180:181] for line in lines[:-1]} == {b"C", b"D"}
    assert b"D000000000000" in {line[166:179] for line in lines[:-1]}
    assert b"C000000000000" in {line[180:193] for line in lines[:-1]}
    assert all(line[180:193] == line[374:387] and line[4:15] == line[16:27] for line in lines[:-1])
    assert b"ACQ12345678" in {line[4:15] for line in lines[:-1]}
    assert (
        len(lines) - 1
        == Transaction.objects.filter(
            merchant=merchant_a, settle_date=DAY, status="success", txn_type__in=["01", "03", "04", "31", "33"]
        ).count()
    )


@pytest.mark.parametrize("batch_rows", [1, 3, 64])
def test_fast_zm_across_batch_boundaries(merchant_a, day_ledger, monkeypatch, batch_rows):
    # given batches that split the day anywhere: rows Python writes first, last or alone in a batch
    monkeypatch.setattr(network_pg, "BATCH_ROWS", batch_rows)
    # then every batch gives the Python path's bytes
    assert b"".join(network_pg.zm_chunks(merchant_a, DAY)) == python_zm(merchant_a)


def test_fast_zm_under_the_proportional_fee_return_rule(merchant_a, day_ledger, settings):
    settings.RECON_REFUND_FEE_RETURN = "proportional"
    fast = b"".join(network_pg.zm_chunks(merchant_a, DAY))
    assert fast == python_zm(merchant_a)
    settings.RECON_REFUND_FEE_RETURN = "none"
    assert fast != python_zm(merchant_a)  # the rule changes refund lines, so the comparison above is not vacuous


def test_fast_zm_totals_equal_the_settlement_summary(merchant_a, day_ledger):
    fast = b"".join(network_pg.zm_chunks(merchant_a, DAY))
    summary = settlement_compute_day(day=DAY).merchants[merchant_a.pk]
    t = totals(parse_zm(fast, strict=True))
    assert t.count == summary["payment_count"] + summary["void_count"] + summary["refund_count"]
    assert t.amount == summary["payment_amount"] + summary["void_amount"] + summary["refund_amount"]
    assert t.fee == -summary["fee"]
    assert t.settlement == summary["net"]


def test_fast_rd_is_byte_identical_to_the_python_path(merchant_a, day_ledger, settings):
    for rule in ("none", "proportional"):
        settings.RECON_REFUND_FEE_RETURN = rule
        assert network.rd_bytes(merchant_a, DAY) == python_rd(merchant_a)


def test_zip_uses_the_fast_path_on_postgresql(merchant_a, day_ledger, monkeypatch):
    calls = []
    original = network_pg.zm_chunks
    monkeypatch.setattr(network_pg, "zm_chunks", lambda *args: calls.append(args) or original(*args))
    out = io.BytesIO()
    network.write_merchant_zip(merchant_a, DAY, out)
    assert calls == [(merchant_a, DAY)]
    with zipfile.ZipFile(out) as archive:
        assert archive.read(zm_name(DAY, merchant_a.code)) == python_zm(merchant_a)


def test_empty_day_gives_an_empty_file(merchant_a, rates):
    assert b"".join(network_pg.zm_chunks(merchant_a, DAY)) == b"" == python_zm(merchant_a)
    assert network.rd_bytes(merchant_a, DAY) == python_rd(merchant_a)


@pytest.mark.parametrize(
    "fields",
    [
        {"trace_time": "0230120000"},  # ten digits, no such day: the codec refuses it
        {"amount": 1_000_000_000_000},  # 13 digits do not fit the amount field
        {"card_masked": "6222021234567890128"},  # a clear card number
        {"trace_time": "1231240000"},  # hour 24
        {"trace_time": "１２３１２３５９５９"},  # ten digits for str.isdigit, not ASCII
        {"query_id": "7026000000000000000\t1"},  # a control character outside the fields _fit cleans
    ],
)
def test_rows_the_codec_refuses_fail_on_both_paths(merchant_a, rates, fields):
    ledger = Ledger(merchant_a)
    ledger.add(seconds=1)
    ledger.add(seconds=2)
    bad = ledger.add(seconds=3, **fields)
    ledger.add(seconds=4)
    with pytest.raises(RecordError) as python_error:
        python_zm(merchant_a)
    chunks = []
    with pytest.raises(RecordError) as fast_error:
        chunks.extend(network_pg.zm_chunks(merchant_a, DAY))
    assert str(fast_error.value) == str(python_error.value)
    # the lines before the refused row were written, as the Python writer streams them
    bad.delete()
    assert b"".join(chunks) == b"\r\n".join(python_zm(merchant_a).split(b"\r\n")[:2]) + b"\r\n"
