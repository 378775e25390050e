"""Import of upstream files: the two real files, the command, and bad input (nothing half-imported)."""

from __future__ import annotations

from datetime import datetime, timedelta
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from payments.gateway.acp.reconfiles import write_zm, zm_name
from portal.audit.models import AuditEvent
from reconciliation.upstream.choices import RunSource, RunStatus
from reconciliation.upstream.importer import reconciliation_import
from reconciliation.upstream.models import Discrepancy, ReconciliationRun, UpstreamRecord
from tests.factories import MerchantFactory

from .conftest import AFTER_CLOSE, BJ, DAY, record_of, upstream_zip

FIXTURES = Path("/work/shared/fixtures/upstream")
SAMPLE_ZIP = FIXTURES / "802310048993424_20150905.zip"
PROD_ZM = FIXTURES / "INN17071888ZM_898319849000018"


@pytest.fixture
def real_merchants(acquirer):
    return (
        MerchantFactory(code="802310048993424", acquirer=acquirer),
        MerchantFactory(code="898319849000018", acquirer=acquirer),
    )


def _import(path=None, data=None, name="", source=RunSource.COMMAND, now=None, actor=None):
    return reconciliation_import(actor=actor, source=source, path=path, data=data, file_name=name, now=now)


def test_official_sample_zip_imports_with_readme_totals(real_merchants):
    run = _import(SAMPLE_ZIP)

    assert run.status == RunStatus.COMPLETED, run.error
    assert (run.record_count, run.amount_total, run.fee_total, run.settlement_total) == (8, 1322700, -7936, 1314764)
    assert run.settle_date.isoformat() == "2015-09-05" and run.merchant == real_merchants[0]
    assert UpstreamRecord.objects.filter(run=run).count() == 8
    # Nothing of that day is in our ledger: every line is upstream only (长款).
    assert run.class_totals["upstream_only"] == {"count": 8, "amount": 1322700}
    assert run.class_totals["matched"]["count"] == 0


def test_production_file_imports_with_readme_totals(real_merchants):
    run = _import(PROD_ZM)

    assert run.status == RunStatus.COMPLETED, run.error
    assert (run.record_count, run.amount_total, run.fee_total, run.settlement_total) == (
        1207,
        4727546394,
        -28968,
        4727517426,
    )
    assert run.error_count == 0
    assert set(UpstreamRecord.objects.filter(run=run).values_list("txn_code", flat=True)) == {"S22"}
    first = UpstreamRecord.objects.filter(run=run).order_by("transmitted_at").first()
    assert first.trans_time == "0717230201"
    assert first.transmitted_at == datetime(2017, 7, 17, 23, 2, 1, tzinfo=BJ)
    assert all("*" in pan or not pan for pan in UpstreamRecord.objects.values_list("card_masked", flat=True))


@pytest.mark.parametrize(
    ("path", "line"),
    [
        (SAMPLE_ZIP, "records=8 amount=1322700 fee=D7936 settlement=C1314764"),
        (PROD_ZM, "records=1207 amount=4727546394 fee=D28968 settlement=C4727517426"),
    ],
)
def test_parse_only_prints_the_totals_and_writes_nothing(db, path, line):
    out = StringIO()
    call_command("reconciliation_import", str(path), "--parse-only", stdout=out)

    assert out.getvalue().strip() == line
    assert ReconciliationRun.objects.count() == 0
    assert AuditEvent.objects.filter(action="reconciliation.import").count() == 0


def test_command_imports_and_prints_one_line(real_merchants):
    out = StringIO()
    call_command("reconciliation_import", str(SAMPLE_ZIP), stdout=out)

    run = ReconciliationRun.objects.get()
    assert (
        out.getvalue().strip() == f"records=8 amount=1322700 fee=D7936 settlement=C1314764 run={run.pk} discrepancies=8"
    )
    assert run.source == RunSource.COMMAND


def test_duplicate_import_is_refused_with_a_pointer(real_merchants):
    first = _import(SAMPLE_ZIP)

    second = _import(SAMPLE_ZIP)

    assert second.status == RunStatus.FAILED and second.error_code == "duplicate"
    assert second.earlier_run == first
    assert f"run {first.pk}" in second.error
    assert UpstreamRecord.objects.count() == 8
    assert Discrepancy.objects.filter(run=second).count() == 0
    with pytest.raises(CommandError, match="already imported"):
        call_command("reconciliation_import", str(SAMPLE_ZIP), stdout=StringIO())


def test_truncated_zip_leaves_only_a_failure_record(real_merchants):
    data = SAMPLE_ZIP.read_bytes()

    run = _import(data=data[: len(data) // 2], name=SAMPLE_ZIP.name)

    assert run.status == RunStatus.FAILED and run.error_code == "bad_zip"
    assert "truncated" in run.error
    assert UpstreamRecord.objects.count() == 0 and Discrepancy.objects.count() == 0
    event = AuditEvent.objects.get(action="reconciliation.import")
    assert event.outcome == "failure" and event.object_id == str(run.pk)


def test_unknown_merchant_is_refused(db):
    run = _import(SAMPLE_ZIP)

    assert run.status == RunStatus.FAILED and run.error_code == "unknown_merchant"
    assert "802310048993424" in run.error and run.merchant is None
    assert UpstreamRecord.objects.count() == 0


def test_merchant_not_visible_to_the_uploader_is_unknown(real_merchants, admin_b):
    run = _import(SAMPLE_ZIP, actor=admin_b, source=RunSource.UPLOAD)

    assert run.error_code == "unknown_merchant"


def _utf8_line(mer_id: str, txn_like) -> bytes:
    """A ZM line whose Chinese field is UTF-8 instead of GBK (the wrong encoding)."""
    line = write_zm([record_of(txn_like, sub_mer_abbr="测试商户")])
    return line.replace("测试商户".encode("gbk"), "测试商户".encode())


def test_wrong_encoding_every_line_fails_the_run(merchant_a, ledger_day):
    txns = ledger_day(merchant_a, 2)
    data = b"".join(_utf8_line(merchant_a.code, t) for t in txns)

    run = _import(data=data, name=zm_name(DAY, merchant_a.code), now=AFTER_CLOSE)

    assert run.status == RunStatus.FAILED and run.error_code == "all_lines_failed"
    assert "Line 1" in run.error and "GBK" in run.error
    assert UpstreamRecord.objects.count() == 0 and Discrepancy.objects.count() == 0


def test_some_malformed_lines_are_reported_and_the_rest_imported(merchant_a, ledger_day):
    txns = ledger_day(merchant_a, 3)
    data = write_zm([record_of(txns[0])]) + _utf8_line(merchant_a.code, txns[1]) + write_zm([record_of(txns[2])])

    run = _import(data=data, name=zm_name(DAY, merchant_a.code), now=AFTER_CLOSE)

    assert run.status == RunStatus.COMPLETED
    assert run.record_count == 2 and run.error_count == 1
    assert run.line_errors[0]["line"] == 2
    assert run.line_errors[0]["message"].startswith("Line 2: not GBK text")
    # The line we could not read is missing upstream: its ledger row shows as ledger only.
    assert list(Discrepancy.objects.values_list("cls", "query_id")) == [("ledger_only", txns[1].query_id)]


def test_future_date_is_refused(merchant_a):
    name, data = upstream_zip(merchant_a.code, [], day=DAY + timedelta(days=2))

    run = _import(data=data, name=name, now=AFTER_CLOSE)

    assert run.status == RunStatus.FAILED and run.error_code == "future"
    assert run.error == "The settlement date 2026-03-12 is in the future."


@pytest.mark.parametrize(
    ("now", "code"),
    [
        (datetime(2026, 3, 10, 22, 59, 59, tzinfo=BJ), "not_closed"),
        (datetime(2026, 3, 10, 23, 0, 0, tzinfo=BJ), "completed"),
    ],
)
def test_a_day_is_importable_only_once_finished(merchant_a, ledger_day, now, code):
    txns = ledger_day(merchant_a, 2)
    name, data = upstream_zip(merchant_a.code, [record_of(t) for t in txns])

    run = _import(data=data, name=name, now=now)

    assert (run.error_code or run.status) == code
    assert UpstreamRecord.objects.count() == (2 if code == "completed" else 0)


def test_unfinished_day_message_in_chinese(merchant_a):
    from django.utils import translation

    name, data = upstream_zip(merchant_a.code, [])
    with translation.override("zh-hans"):
        run = _import(data=data, name=name, now=datetime(2026, 3, 10, 22, 59, 59, tzinfo=BJ))

    assert run.error_code == "not_closed"
    assert run.error  # translated text (or the English source until locale/ is filled)
