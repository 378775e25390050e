"""Upstream reconciliation on PostgreSQL: the COPY fast path (``reconciliation.upstream.fastload``) gives exactly
what the codec path (the one SQLite runs) gives: the real files' README totals, the same records, line errors and
discrepancy classes."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from payments.gateway.acp.reconfiles import build_zip, write_zm, zm_name
from payments.models import Transaction
from reconciliation.upstream import importer
from reconciliation.upstream.choices import RunSource, RunStatus
from reconciliation.upstream.importer import reconciliation_import
from reconciliation.upstream.models import Discrepancy, ReconciliationRun, UpstreamRecord
from tests.factories import MerchantFactory
from tests.reconciliation_upstream.conftest import AFTER_CLOSE, BJ, DAY, ledger_day, record_of

pytestmark = pytest.mark.django_db

FIXTURES = Path("/work/shared/fixtures/upstream")
SAMPLE_ZIP = FIXTURES / "802310048993424_20150905.zip"
PROD_ZM = FIXTURES / "INN17071888ZM_898319849000018"
_RECORD_FIELDS = (
    "kind", "line_no", "txn_code", "txn_type", "query_id", "order_id", "trace_no", "trans_time", "transmitted_at",
    "card_masked", "card_type", "amount", "merchant_fee", "settle_amount", "orig_query_id", "biz_type",
    "transaction_id",
)  # fmt: skip


__all__ = ["ledger_day"]  # the fixture, shared with tests/reconciliation_upstream


@pytest.fixture(autouse=True)
def _on_postgres(db):
    """PostgreSQL, and the fee rules the tests' files follow (0.6 %, ``fee_of``) as the default rates."""
    from django.db import connection

    from reconciliation.choices import CardClass
    from reconciliation.models import FeeRate

    assert connection.vendor == "postgresql"
    for card_class in CardClass.values:
        FeeRate.objects.get_or_create(merchant=None, card_class=card_class, defaults={"rate_bp": 60})


@pytest.fixture
def codec_path(monkeypatch):
    """Force the codec path (what SQLite runs) for the next imports."""

    def use_codec() -> None:
        monkeypatch.setattr(importer, "_load_zm_fast", _codec_zm)

    return use_codec


def _codec_zm(run, opener, loader, errors):
    importer._load_with_codec(run, "zm", opener, loader, errors)


def _records(run) -> list[tuple]:
    return list(UpstreamRecord.objects.filter(run=run).order_by("kind", "line_no").values_list(*_RECORD_FIELDS))


def _classes(run) -> list[tuple]:
    return sorted(Discrepancy.objects.filter(run=run).values_list("cls", "query_id", "order_id", "transaction_id"))


def _forget(run) -> None:
    """Remove a run so the same file can be imported again by the other path."""
    Discrepancy.objects.filter(run=run).delete()
    UpstreamRecord.objects.filter(run=run).delete()
    ReconciliationRun.objects.filter(pk=run.pk).update(status=RunStatus.FAILED)


def test_both_real_files_import_with_the_readme_totals(acquirer):
    MerchantFactory(code="802310048993424", acquirer=acquirer)
    MerchantFactory(code="898319849000018", acquirer=acquirer)

    sample = reconciliation_import(actor=None, source=RunSource.COMMAND, path=SAMPLE_ZIP)
    prod = reconciliation_import(actor=None, source=RunSource.COMMAND, path=PROD_ZM)

    assert sample.status == prod.status == RunStatus.COMPLETED
    assert (sample.record_count, sample.amount_total, sample.fee_total, sample.settlement_total) == (
        8,
        1322700,
        -7936,
        1314764,
    )
    assert (prod.record_count, prod.amount_total, prod.fee_total, prod.settlement_total) == (
        1207,
        4727546394,
        -28968,
        4727517426,
    )
    assert prod.error_count == 0 and sample.error_count == 0
    first = UpstreamRecord.objects.filter(run=prod).order_by("transmitted_at", "line_no").first()
    last = UpstreamRecord.objects.filter(run=prod).order_by("-transmitted_at", "-line_no").first()
    assert (first.trans_time, last.trans_time) == ("0717230201", "0718230156")
    assert first.transmitted_at == datetime(2017, 7, 17, 23, 2, 1, tzinfo=BJ)
    assert sample.class_totals["upstream_only"] == {"count": 8, "amount": 1322700}
    assert prod.class_totals["upstream_only"] == {"count": 1207, "amount": 4727546394}


def test_real_production_file_gives_the_same_records_on_both_paths(acquirer, codec_path):
    MerchantFactory(code="898319849000018", acquirer=acquirer)
    fast = reconciliation_import(actor=None, source=RunSource.COMMAND, path=PROD_ZM)
    fast_records = [r[:-1] for r in _records(fast)]
    _forget(fast)

    codec_path()
    slow = reconciliation_import(actor=None, source=RunSource.COMMAND, path=PROD_ZM)

    assert slow.status == RunStatus.COMPLETED
    assert fast_records == [r[:-1] for r in _records(slow)]
    assert len(fast_records) == 1207


def _altered_day(merchant_a, merchant_b, ledger_day):
    txns = ledger_day(merchant_a, 7)
    ledger_day(merchant_b, 2)
    dropped, changed_amount, changed_status, changed_fee = txns[1], txns[2], txns[3], txns[4]
    Transaction.objects.filter(pk=changed_status.pk).update(status="pending")
    extra = record_of(txns[0], query_id="202603109999999999999", order_id="EXTRA0001", amount=777)
    records = [
        record_of(txns[0]),
        record_of(changed_amount, amount=changed_amount.amount + 100),
        record_of(changed_status),
        record_of(changed_fee, merchant_fee=-1),
        record_of(txns[5]),
        record_of(txns[6], query_id=""),  # matched by order id + transmission time
        extra,
    ]
    expected = [
        ("amount", changed_amount),
        ("fee", changed_fee),
        ("ledger_only", dropped),
        ("status", changed_status),
    ]
    return records, expected, extra


def _day_on_both_paths(mer_id: str, records, codec_path) -> tuple[list, dict, list]:
    """Import the day's file by the fast path, then (forgotten) by the codec path: both completed, same
    classes, totals and records. Returns the fast path's (classes, class totals, records)."""
    name, data = build_zip(mer_id=mer_id, settle_date=DAY, zm=write_zm(records))
    fast = reconciliation_import(actor=None, source=RunSource.COMMAND, data=data, file_name=name, now=AFTER_CLOSE)
    fast_classes, fast_totals, fast_records = _classes(fast), fast.class_totals, _records(fast)
    _forget(fast)
    codec_path()
    slow = reconciliation_import(actor=None, source=RunSource.COMMAND, data=data, file_name=name, now=AFTER_CLOSE)
    assert fast.status == slow.status == RunStatus.COMPLETED
    assert fast_classes == _classes(slow)
    assert fast_totals == slow.class_totals
    assert fast_records == _records(slow)
    return fast_classes, fast_totals, fast_records


def test_altered_day_gives_the_same_classes_as_the_codec_path(merchant_a, merchant_b, ledger_day, codec_path):
    records, expected, extra = _altered_day(merchant_a, merchant_b, ledger_day)

    fast_classes, fast_totals, _ = _day_on_both_paths(merchant_a.code, records, codec_path)

    assert fast_classes == sorted(
        [(cls, t.query_id, t.order_id, t.pk) for cls, t in expected]
        + [("upstream_only", extra.query_id, "EXTRA0001", None)]
    )
    assert fast_totals["matched"]["count"] == 3


def test_irregular_lines_give_the_same_records_and_errors_on_both_paths(merchant_a, ledger_day, codec_path):
    txns = ledger_day(merchant_a, 6)
    good = [write_zm([record_of(t)], newline=b"\n") for t in txns]
    chinese = write_zm([record_of(txns[1], sub_mer_abbr="测试商户")], newline=b"\n")  # GBK: codec line
    other_merchant = write_zm([record_of(txns[2], mer_id="999999999999999")], newline=b"\n")
    leap = write_zm([record_of(txns[3], orig_trans_time="0229120000")], newline=b"\n")
    bad_month = good[4][:35] + b"1310090000" + good[4][45:]
    backslash = write_zm([record_of(txns[5], order_id="A\\B" + txns[5].order_id[3:])], newline=b"\r\n")
    data = good[0] + b"\n" + chinese + other_merchant + b"   \n" + leap + bad_month + backslash + b"short line\n"
    name = zm_name(DAY, merchant_a.code)

    fast = reconciliation_import(actor=None, source=RunSource.COMMAND, data=data, file_name=name, now=AFTER_CLOSE)
    fast_records, fast_errors = _records(fast), fast.line_errors
    fast_counts = (fast.record_count, fast.amount_total, fast.fee_total, fast.error_count)
    _forget(fast)
    codec_path()
    slow = reconciliation_import(actor=None, source=RunSource.COMMAND, data=data, file_name=name, now=AFTER_CLOSE)

    assert fast.status == slow.status == RunStatus.COMPLETED
    assert fast_records == _records(slow)
    assert fast_errors == slow.line_errors
    assert fast_counts == (slow.record_count, slow.amount_total, slow.fee_total, slow.error_count)
    assert [e["line"] for e in fast_errors] == [4, 7, 9]
    assert [r[1] for r in fast_records] == [1, 3, 6, 8]


def test_a_large_regular_file_takes_the_fast_path_whole(merchant_a, ledger_day, monkeypatch):
    txns = ledger_day(merchant_a, 3000)
    data = write_zm([record_of(t) for t in txns])
    calls = []
    original = importer.ZM_CODEC.parse_line
    monkeypatch.setattr(importer.ZM_CODEC, "parse_line", lambda *a, **k: calls.append(a) or original(*a, **k))

    run = reconciliation_import(
        actor=None, source=RunSource.COMMAND, data=data, file_name=zm_name(DAY, merchant_a.code), now=AFTER_CLOSE
    )

    assert run.status == RunStatus.COMPLETED and run.record_count == 3000
    assert run.class_totals["matched"]["count"] == 3000 and Discrepancy.objects.filter(run=run).count() == 0
    assert calls == []


def _patch(line: bytes, attr: str, value: bytes) -> bytes:
    from payments.gateway.acp.reconfiles.layout import ZM_FIELDS

    field = next(f for f in ZM_FIELDS if f.attr == attr)
    assert len(value) == field.width
    return line[: field.start] + value + line[field.end :]


@pytest.mark.parametrize("newline", [b"\r\n", b"\n"])
def test_bad_values_inside_a_large_regular_block_go_to_the_codec(merchant_a, ledger_day, codec_path, newline):
    # given a 3,000-line file (one read block, CRLF or LF) whose lines are well laid out, six of them with bad values
    txns = ledger_day(merchant_a, 3000)
    lines = write_zm([record_of(t) for t in txns]).split(b"\r\n")[:-1]
    lines[99] = _patch(lines[99], "trans_time", b"0229120000")  # no leap year within one year of DAY (2026)
    lines[199] = _patch(lines[199], "trans_time", b"1310090000")  # month 13
    lines[299] = _patch(lines[299], "mer_id", b"999999999999999")  # another merchant
    lines[399] = _patch(lines[399], "pan", b"6222020000000128   ")  # 16 digits: the codec masks it
    lines[499] = _patch(lines[499], "mer_id", b" " * 15)  # blank merchant number: accepted
    lines[599] = _patch(lines[599], "orig_trans_time", b"0431000000")  # 31 April
    data = newline.join(lines) + newline
    name = zm_name(DAY, merchant_a.code)

    # when it is imported by the fast path, then by the codec path
    fast = reconciliation_import(actor=None, source=RunSource.COMMAND, data=data, file_name=name, now=AFTER_CLOSE)
    fast_records, fast_errors = _records(fast), fast.line_errors
    fast_counts = (fast.record_count, fast.amount_total, fast.fee_total, fast.error_count)
    _forget(fast)
    codec_path()
    slow = reconciliation_import(actor=None, source=RunSource.COMMAND, data=data, file_name=name, now=AFTER_CLOSE)

    # then both give the same records and the same line errors (0229 included: an invalid date, not a crash)
    assert fast.status == slow.status == RunStatus.COMPLETED
    assert fast_errors == slow.line_errors
    assert [(e["line"], e["code"]) for e in fast_errors] == [
        (100, "invalid"),
        (200, "time"),
        (300, "merchant"),
        (600, "time"),
    ]
    assert fast_records == _records(slow)
    assert fast_counts == (slow.record_count, slow.amount_total, slow.fee_total, slow.error_count)
    assert fast.record_count == 2996
    masked = UpstreamRecord.objects.get(run=slow, line_no=400).card_masked
    assert masked != "6222020000000128" and masked.startswith("622202") and masked.endswith("0128")


def python_ledger_fees(merchant, settle_date):
    """The default provider under another name: match_run then takes the Python path (``LedgerFee`` rows)."""
    from reconciliation.upstream.fees import ledger_fees

    return ledger_fees(merchant, settle_date)


def test_ledger_fees_computed_in_sql_equal_the_settlement_rules(merchant_a, merchant_b, ledger_day, settings):
    # given the merchant's own rates (minimum, maximum), the proportional refund rule, and a day of payments,
    # voids and refunds, one of them refunding another merchant's payment (its fee is Python's)
    from reconciliation.choices import CardClass, FeeReturn
    from reconciliation.models import FeeRate
    from reconciliation.upstream.fees import ledger_fees

    settings.RECON_REFUND_FEE_RETURN = FeeReturn.PROPORTIONAL
    FeeRate.objects.create(merchant=merchant_a, card_class=CardClass.DEBIT, rate_bp=38, min_fee=50, max_fee=2000)
    FeeRate.objects.create(merchant=merchant_a, card_class=CardClass.CREDIT, rate_bp=125, min_fee=0, max_fee=None)
    debit, credit, other, small = ledger_day(merchant_a, 4)
    Transaction.objects.filter(pk=debit.pk).update(amount=1_000_000, card_type="01")  # capped at 2000
    Transaction.objects.filter(pk=credit.pk).update(amount=123_457, card_type="02")
    Transaction.objects.filter(pk=other.pk).update(amount=77_777, card_type="")  # other: the default 60 bp
    Transaction.objects.filter(pk=small.pk).update(amount=30, card_type="01")  # minimum 50 > amount: 30
    foreign = ledger_day(merchant_b, 1)[0]
    void = ledger_day(merchant_a, 1, txn_type="31", orig=credit, card_type="")[0]
    refund = ledger_day(merchant_a, 1, txn_type="04", orig=debit, amount=333_333)[0]
    refund_foreign = ledger_day(merchant_a, 1, txn_type="04", orig=foreign, amount=500)[0]
    refund_alone = ledger_day(merchant_a, 1, txn_type="04", amount=9_999)[0]
    txns = list(Transaction.objects.filter(merchant=merchant_a).order_by("id"))
    expected = {pk: fee for pk, fee in ledger_fees(merchant_a, DAY) if fee}
    assert len(expected) == 8 and {void.pk, refund.pk, refund_foreign.pk, refund_alone.pk} <= set(expected)
    data = write_zm([record_of(t, merchant_fee=0, settle_amount=t.amount) for t in txns])
    name = zm_name(DAY, merchant_a.code)

    # when the file is imported with the default provider (SQL), then with the same rules through Python
    by_sql = reconciliation_import(actor=None, source=RunSource.COMMAND, data=data, file_name=name, now=AFTER_CLOSE)
    sql_fees = dict(Discrepancy.objects.filter(run=by_sql, cls="fee").values_list("transaction_id", "ledger_fee"))
    _forget(by_sql)
    settings.RECON_LEDGER_FEE_PROVIDER = f"{__name__}.python_ledger_fees"
    by_python = reconciliation_import(actor=None, source=RunSource.COMMAND, data=data, file_name=name, now=AFTER_CLOSE)

    # then every fee difference carries the settlement rules' fee, the same on both paths
    assert sql_fees == expected
    assert dict(Discrepancy.objects.filter(run=by_python, cls="fee").values_list("transaction_id", "ledger_fee")) == (
        expected
    )
    assert expected[debit.pk] == -2000 and expected[small.pk] == -30 and expected[credit.pk] == -1543
    assert expected[void.pk] == 1543 and expected[refund.pk] == 667


def test_lines_of_another_ledger_day_are_linked_on_both_paths(merchant_a, ledger_day, codec_path):
    """Payments our cut-off put on the day before: found by queryId outside the day's own read, compared."""
    from datetime import timedelta

    day_rows = ledger_day(merchant_a, 2)
    earlier = datetime(2026, 3, 9, 10, 0, tzinfo=BJ)
    before = DAY - timedelta(days=1)
    (same,) = ledger_day(merchant_a, 1, txn_time=earlier, settle_date=before)
    (changed,) = ledger_day(merchant_a, 1, txn_time=earlier, settle_date=before)
    records = [record_of(t) for t in day_rows] + [record_of(same), record_of(changed, amount=changed.amount + 1)]

    fast_classes, fast_totals, fast_records = _day_on_both_paths(merchant_a.code, records, codec_path)

    assert fast_classes == [("amount", changed.query_id, changed.order_id, changed.pk)]
    assert fast_totals["matched"]["count"] == 3
    assert {r[-1] for r in fast_records} == {t.pk for t in [*day_rows, same, changed]}
