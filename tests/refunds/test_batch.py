"""Batch refund files through the pipeline: validation against the ledger, exact line errors,
file-level errors, duplicates, the cap across files, processing and the result file."""

from __future__ import annotations

import io
from datetime import timedelta
from unittest import mock

import pytest
from django.test import TestCase
from django.utils import timezone
from openpyxl import load_workbook

from payments.settlement import business_tz
from portal.batches import storage
from portal.batches.models import BatchLine
from portal.batches.selectors import batch_error_report
from portal.batches.services import BatchError, batch_submit
from refunds import gateway
from refunds.services import refund_request

from .conftest import errors_of, text_batch, text_file, upload, xlsx_file

pytestmark = pytest.mark.django_db


def test_valid_text_file_validates_with_amounts_and_kinds(operator_a, make_payment):
    p1 = make_payment(operator_a.organisation, amount=10000)
    p2 = make_payment(operator_a.organisation, amount=5000)
    rows = [("RFB000000001", 2500, p1.query_id, "damaged"), ("RFB000000002", 5000, p2.query_id, "return")]

    batch = upload(operator_a, text_file(text_batch(rows)))

    assert (batch.status, batch.total_lines, batch.valid_lines, batch.valid_amount) == ("validated", 2, 2, 7500)
    lines = list(BatchLine.objects.filter(batch=batch).order_by("line_no"))
    assert [(ln.line_no, ln.ref, ln.data["txnType"]) for ln in lines] == [(3, str(p1.pk), "04"), (4, str(p2.pk), "04")]


def test_gbk_file_with_chinese_title_and_lf(operator_a, make_payment):
    payment = make_payment(operator_a.organisation)
    lines = [
        "5.0.0|100|1||",
        "订单号|退货金额(分)|原交易查询流水号|退货原因",
        f"RFGBK0000001|100|{payment.query_id}|客户退货",
    ]

    batch = upload(operator_a, text_file(lines, encoding="gbk", eol="\n"))

    assert (batch.status, batch.valid_lines) == ("validated", 1)
    assert BatchLine.objects.get(batch=batch).data["reason"] == "客户退货"


def test_each_bad_line_has_number_column_and_code(operator_a, admin_b, make_payment, time_machine):
    now = timezone.now()
    time_machine.move_to(now)
    ok = make_payment(operator_a.organisation, amount=10000)
    failed = make_payment(operator_a.organisation, status="failed")
    old = make_payment(operator_a.organisation, when=now - timedelta(days=331))
    other = make_payment(admin_b.organisation)
    rows = [
        ("RFE000000001", 6000, ok.query_id, "a"),  # 3 ok
        ("RFE000000002", 4001, ok.query_id, "b"),  # 4 over what is left after line 3
        ("RFE000000003", 100, failed.query_id, "c"),  # 5
        ("RFE000000004", 100, old.query_id, "d"),  # 6
        ("RFE000000005", 100, other.query_id, "e"),  # 7 another merchant's: not found
        ("SHORT", 100, ok.query_id, "f"),  # 8
        ("RFE000000007", 0, ok.query_id, "g"),  # 9
        ("RFE000000001", 100, ok.query_id, "h"),  # 10 duplicate order id
        ("RFE000000009", 100, "2.01707E+20", "i"),  # 11 Excel's number
        ("RFE000000010", 4000, ok.query_id, "j"),  # 12 ok: exactly the rest
    ]

    batch = upload(operator_a, text_file(text_batch(rows)))

    assert batch.status == "validated"
    assert errors_of(batch) == [
        (4, "txnAmt", "amount_exceeds"),
        (5, "origQryId", "orig_not_success"),
        (6, "origQryId", "window_expired"),
        (7, "origQryId", "orig_not_found"),
        (8, "orderId", "order_id_format"),
        (9, "txnAmt", "amount_not_positive"),
        (10, "orderId", "duplicate_order_id_in_file"),
        (11, "origQryId", "excel_number_id"),
    ]
    assert (batch.valid_lines, batch.valid_amount) == (2, 10000)
    report = b"".join(batch_error_report(batch, lang="en")).decode("utf-8-sig")
    assert report.splitlines()[1].startswith("4,")
    assert "The amount (40.01 yuan) is more than what can still be refunded" in report
    assert "Format the column as Text" in report


def test_ragged_rows_and_missing_original(operator_a, make_payment):
    payment = make_payment(operator_a.organisation)
    lines = [
        "5.0.0|300|3||",
        "orderId|txnAmt|origQryId|origOrderId|origTxnTime",
        f"RFR000000001|100|{payment.query_id}",
        "RFR000000002|100||||",
        f"RFR000000003|100||{payment.order_id}|{payment.txn_time.astimezone(business_tz()):%Y%m%d%H%M%S}",
    ]

    batch = upload(operator_a, text_file(lines))

    assert errors_of(batch) == [(3, "", "column_count"), (4, "origQryId", "orig_missing")]
    assert batch.valid_lines == 1


@pytest.mark.parametrize(
    ("lines", "code"),
    [
        (["hello", "orderId|txnAmt|origQryId"], "header_invalid"),
        (["5.0.0|100|1||", "orderId|amount|origQryId", "RF00000001|100|1"], "unknown_column"),
        (["5.0.0|100|1||", "orderId|origQryId", "RF00000001|1"], "missing_column"),
        (["5.0.0|100|1||", "orderId|txnAmt|origOrderId", "RF00000001|100|X"], "missing_orig_column"),
        (["5.0.0|999|1||", "orderId|txnAmt|origQryId", "RF00000001|100|1"], "totals_mismatch"),
        (["5.0.0|100|2||", "orderId|txnAmt|origQryId", "RF00000001|100|1"], "totals_mismatch"),
    ],
)
def test_file_level_problems_fail_the_whole_file(operator_a, lines, code):
    batch = upload(operator_a, text_file(lines))

    assert (batch.status, batch.error_code, batch.total_lines) == ("invalid", code, 0)
    assert BatchLine.objects.filter(batch=batch).count() == 0


def test_totals_mismatch_message(operator_a):
    batch = upload(operator_a, text_file(["5.0.0|999|1||", "orderId|txnAmt|origQryId", "RF00000001|100|1"]))

    from portal.batches.selectors import batch_message

    assert batch_message(batch) == "The header says 1 lines for 999 fen, but the file has 1 lines for 100 fen."


def test_same_file_twice_is_refused_pointing_at_the_first(operator_a, make_payment):
    payment = make_payment(operator_a.organisation)
    lines = text_batch([("RFD000000001", 100, payment.query_id, "x")])
    first = upload(operator_a, text_file(lines))

    with pytest.raises(BatchError) as again:
        upload(operator_a, text_file(lines, name="renamed.txt"))

    assert (again.value.code, again.value.status, again.value.batch_id) == ("file_duplicate", 409, first.pk)


def test_order_id_of_a_single_refund_or_earlier_batch_is_refused(operator_a, make_payment):
    payment = make_payment(operator_a.organisation, amount=10000)
    with mock.patch("refunds.tasks.send_refund.delay"):
        single = refund_request(actor=operator_a, original=payment, amount=100, reason="x")
    first = upload(operator_a, text_file(text_batch([("RFO000000001", 100, payment.query_id, "x")])))

    second = upload(
        operator_a,
        text_file(
            text_batch([(single.order_id, 100, payment.query_id, "x"), ("RFO000000001", 100, payment.query_id, "y")])
        ),
    )

    assert first.status == "validated"
    assert errors_of(second) == [(3, "orderId", "order_id_used"), (4, "orderId", "duplicate_order_id")]


def test_cap_counts_pending_single_refunds_and_other_live_batches(operator_a, make_payment):
    payment = make_payment(operator_a.organisation, amount=10000, refunded_amount=1000)
    with mock.patch("refunds.tasks.send_refund.delay"):
        refund_request(actor=operator_a, original=payment, amount=3000, reason="x")
    upload(operator_a, text_file(text_batch([("RFC000000001", 4000, payment.query_id, "x")])))

    batch = upload(
        operator_a,
        text_file(
            text_batch([("RFC000000002", 2001, payment.query_id, "x"), ("RFC000000003", 2000, payment.query_id, "y")])
        ),
    )

    assert errors_of(batch) == [(3, "txnAmt", "amount_exceeds")]
    assert batch.valid_amount == 2000
    with pytest.raises(Exception) as single:
        refund_request(actor=operator_a, original=payment, amount=1, reason="x")
    assert single.value.code == "nothing_refundable"


def test_xlsx_with_chinese_headers_in_yuan(operator_a, make_payment):
    payment = make_payment(operator_a.organisation, amount=10000)
    rows = [
        ["订单号", "退货金额(元)", "原交易查询流水号", "退货原因"],
        ["RFX000000001", 12.5, payment.query_id, "客户退货"],
        ["RFX000000002", "0.01", payment.query_id, None],
        ["RFX000000003", 1.234, payment.query_id, None],
        ["RFX000000004", 1, 201707000000000000000, None],
        ["RFX000000005", 1, "=A1", None],
    ]

    batch = upload(operator_a, xlsx_file(rows))

    assert batch.status == "validated"
    assert [(ln.line_no, ln.amount) for ln in BatchLine.objects.filter(batch=batch, status="valid")] == [
        (2, 1250),
        (3, 1),
    ]
    assert errors_of(batch) == [
        (4, "txnAmt", "amount_yuan_format"),
        (5, "origQryId", "excel_number_id"),
        (6, "origQryId", "formula"),
    ]


def test_acquirer_uploads_for_one_merchant_and_merid_must_match(acquirer_reviewer, merchant_a, make_payment):
    payment = make_payment(merchant_a, amount=10000)
    lines = text_batch(
        [
            ("RFM000000001", 100, payment.query_id, merchant_a.code),
            ("RFM000000002", 100, payment.query_id, "898310000000001"),
        ],
        columns="orderId|txnAmt|origQryId|merId",
    )

    batch = upload(acquirer_reviewer, text_file(lines), merchant=merchant_a)

    assert batch.merchant_id == merchant_a.pk
    assert errors_of(batch) == [(4, "merId", "merid_mismatch")]


# --- processing and result files ---------------------------------------------------------------------


def _answers(succeed=lambda order_id: True):
    def send(**kwargs):
        return gateway.Answer(gateway.ACCEPTED, {"respCode": "00", "respMsg": "ok"})

    def query(*, order_id, **kwargs):
        ok = succeed(order_id)
        return gateway.Answer(
            gateway.SUCCEEDED if ok else gateway.FAILED,
            {
                "respCode": "00",
                "origRespCode": "00" if ok else "60",
                "origRespMsg": "成功" if ok else "交易失败详询发卡行",
                "queryId": f"Q{order_id}"[:21],
                "settleDate": "0310",
                "traceNo": "123456",
                "traceTime": "0310120000",
            },
        )

    return send, query


def _approve(batch, reviewer):
    import time

    from portal.approvals.models import ApprovalRequest
    from portal.approvals.services import approval_decide

    batch.refresh_from_db()
    request = ApprovalRequest.objects.get(pk=batch.approval_id)
    approval_decide(
        actor=reviewer,
        request_id=request.pk,
        decision="approve",
        seen_content_hash=request.content_hash,
        otp_verified_at=time.time(),
    )


@pytest.mark.parametrize("fmt", ["text", "xlsx"])
def test_processing_refunds_each_line_and_writes_the_result_file(
    fmt, operator_a, reviewer_a, make_payment, django_capture_on_commit_callbacks
):
    p1 = make_payment(operator_a.organisation, amount=10000)
    p2 = make_payment(operator_a.organisation, amount=5000)
    if fmt == "text":
        f = text_file(
            text_batch(
                [
                    ("RFP000000001", 2500, p1.query_id, "a"),
                    ("RFP000000002", 5000, p2.query_id, "b"),
                    ("RFP000000003", 1, "X", "c"),
                ]
            )
        )
    else:
        f = xlsx_file(
            [
                ["orderId", "txnAmt", "origQryId", "reason"],
                ["RFP000000001", 25, p1.query_id, "a"],
                ["RFP000000002", 50, p2.query_id, "b"],
                ["RFP000000003", 0.01, "X", "c"],
            ]
        )
    batch = upload(operator_a, f)
    send, query = _answers(succeed=lambda order_id: order_id != "RFP000000002")

    with (
        mock.patch.object(gateway, "send", side_effect=send) as sent,
        mock.patch.object(gateway, "query", side_effect=query),
        django_capture_on_commit_callbacks(execute=True),
    ):
        batch_submit(actor=operator_a, batch=batch)
        _approve(batch, reviewer_a)

    batch.refresh_from_db()
    assert (batch.status, batch.succeeded_lines, batch.failed_lines, batch.succeeded_amount) == (
        "partially_completed",
        1,
        1,
        2500,
    )
    assert sent.call_count == 2
    p1.refresh_from_db()
    p2.refresh_from_db()
    assert (p1.refunded_amount, p2.refunded_amount) == (2500, 0)
    with storage.open_plaintext(batch.result_name) as stream:
        content = stream.read()
    if fmt == "text":
        text = content.decode()
        lines = text.split("\r\n")
        assert lines[0] == "5.0.0|7501|3|||2500|1"
        assert lines[1].startswith("orderId|txnAmt|origQryId|") or lines[1].startswith("订单号|")
        assert lines[2].split("|")[:3] == ["RFP000000001", "2500", p1.query_id]
        assert lines[2].split("|")[-6:] == ["00", "成功", "QRFP000000001", "0310", "123456", "0310120000"]
        assert lines[3].split("|")[-6:-4] == ["60", "交易失败详询发卡行"]
        assert lines[4].split("|")[-6] == ""  # refused at validation: no response code
    else:
        sheet = load_workbook(io.BytesIO(content)).worksheets[0]
        rows = list(sheet.iter_rows(values_only=True))
        header = list(rows[0])
        assert rows[1][header.index(header[0])] == "RFP000000001"
        assert rows[1][1] == 25
        assert list(rows[1][-6:]) == ["00", "成功", "QRFP000000001", "0310", "123456", "0310120000"]
        assert rows[3][-6] in (None, "")


def test_large_batch_needs_the_acquirer_reviewer_too(
    operator_a, reviewer_a, acquirer_reviewer, make_payment, client_for
):
    payment = make_payment(operator_a.organisation, amount=60_000_000)
    batch = upload(operator_a, text_file(text_batch([("RFT000000001", 50_000_000, payment.query_id, "big")])))
    with mock.patch("portal.batches.services._enqueue") as enqueue:
        batch_submit(actor=operator_a, batch=batch)
        _approve(batch, reviewer_a)
        batch.refresh_from_db()
        assert batch.status == "pending_review"
        assert (
            f"/refunds/batches/{batch.pk}/"
            in client_for(acquirer_reviewer).get("/refunds/?tab=batches").content.decode()
        )
        with TestCase.captureOnCommitCallbacks(execute=True):
            _approve(batch, acquirer_reviewer)

    batch.refresh_from_db()
    assert batch.status == "approved"
    enqueue.assert_called_once_with("process_batch", batch.pk)
