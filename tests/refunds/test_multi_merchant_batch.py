"""An acquirer's batch refund file for several of its merchants (no merchant chosen at upload): each line
names its merchant (merId) and is checked against that merchant's ledger, window and order ids; the cap
holds across its batches and the merchants' own; acquirer reviewers decide it; each line is sent with its
own merchant number; merchants never see it."""

from __future__ import annotations

import time
from datetime import timedelta
from unittest import mock

import pytest
from django.urls import reverse
from django.utils import timezone, translation

from payments.models import MerchantProfile, Transaction
from portal.approvals import errors as approval_errors
from portal.approvals.models import ApprovalPolicy, ApprovalRequest
from portal.approvals.selectors import approvals_waiting_for
from portal.approvals.services import approval_decide
from portal.batches import storage
from portal.batches.errors import render_message
from portal.batches.models import Batch, BatchLine
from portal.batches.services import BatchError, batch_submit
from refunds import gateway
from refunds.batch import refund_batch_kind
from refunds.selectors import refund_batches_visible_to

from ..factories import MerchantFactory, UserFactory
from .conftest import errors_of, text_batch, text_file, upload, xlsx_file

pytestmark = pytest.mark.django_db

COLUMNS = "orderId|txnAmt|origQryId|merId|reason"
UNKNOWN_MER_ID = "898319999999999"


def valid_lines(batch) -> list[tuple]:
    return list(
        BatchLine.objects.filter(batch=batch, status="valid")
        .order_by("line_no")
        .values_list("line_no", "order_id", "merchant_id", "ref")
    )


def decide(user, batch, decision="approve", reason=""):
    batch.refresh_from_db()
    request = ApprovalRequest.objects.get(pk=batch.approval_id)
    return approval_decide(
        actor=user,
        request_id=request.pk,
        decision=decision,
        seen_content_hash=request.content_hash,
        otp_verified_at=time.time(),
        reason=reason,
    )


@pytest.fixture
def merchant_c(acquirer):
    """A second merchant of merchant A's acquirer."""
    return MerchantFactory(acquirer=acquirer)


@pytest.fixture
def uploader(acquirer):
    return UserFactory(organisation=acquirer, username="acq.uploader", roles=["acquirer_reviewer"])


@pytest.fixture
def acq_reviewer2(acquirer):
    return UserFactory(organisation=acquirer, username="acq.reviewer2", roles=["acquirer_reviewer"])


@pytest.fixture
def acq_reviewer3(acquirer):
    return UserFactory(organisation=acquirer, username="acq.reviewer3", roles=["acquirer_reviewer"])


def _file(fmt: str, rows: list[tuple]):
    if fmt == "text":
        return text_file(text_batch(rows, columns=COLUMNS))
    header = ["orderId", "txnAmt", "origQryId", "merId", "reason"]
    return xlsx_file([header, *([r[0], r[1] / 100, r[2], r[3] or None, r[4]] for r in rows)], name="refunds.xlsx")


@pytest.mark.parametrize("fmt", ["text", "xlsx"])
def test_each_line_is_checked_against_its_own_merchant(
    fmt, uploader, merchant_a, merchant_b, merchant_c, make_payment, time_machine
):
    now = timezone.now()
    time_machine.move_to(now)
    MerchantProfile.objects.create(merchant=merchant_c, refund_window_days=10)
    pay_a = make_payment(merchant_a, amount=10000, when=now - timedelta(days=20))
    pay_c = make_payment(merchant_c, amount=5000)
    old_c = make_payment(merchant_c, amount=5000, when=now - timedelta(days=20))
    pay_b = make_payment(merchant_b, amount=5000)  # another acquirer's merchant
    rows = [
        ("RFMM00000001", 1000, pay_a.query_id, merchant_a.code, "a"),  # 3 ok (A's window: 330 days)
        ("RFMM00000001", 1000, pay_c.query_id, merchant_c.code, "b"),  # 4 ok: the same order id, another merchant
        ("RFMM00000002", 1000, pay_c.query_id, merchant_a.code, "c"),  # 5 C's payment under A's number
        ("RFMM00000003", 1000, pay_b.query_id, merchant_b.code, "d"),  # 6 another acquirer's merchant
        ("RFMM00000004", 1000, pay_a.query_id, "", "e"),  # 7 no merId
        ("RFMM00000001", 1000, pay_a.query_id, merchant_a.code, "f"),  # 8 twice under A
        ("RFMM00000005", 1000, pay_a.query_id, UNKNOWN_MER_ID, "g"),  # 9 no such merchant
        ("RFMM00000006", 1000, old_c.query_id, merchant_c.code, "h"),  # 10 past C's 10-day window
        ("RFMM00000007", 4001, pay_c.query_id, merchant_c.code, "i"),  # 11 over what is left of C's payment
        ("RFMM00000008", 4000, pay_c.query_id, merchant_c.code, "j"),  # 12 ok: exactly the rest
    ]
    first = 2 if fmt == "xlsx" else 3  # a workbook has no header line

    batch = upload(uploader, _file(fmt, rows))

    assert (batch.status, batch.organisation_id, batch.merchant_id) == ("validated", uploader.organisation_id, None)
    expected = [
        (5, "origQryId", "orig_not_found"),
        (6, "merId", "merid_unknown"),
        (7, "merId", "merid_required"),
        (8, "orderId", "duplicate_order_id_in_file"),
        (9, "merId", "merid_unknown"),
        (10, "origQryId", "window_expired"),
        (11, "txnAmt", "amount_exceeds"),
    ]
    assert errors_of(batch) == [(n - 3 + first, column, code) for n, column, code in expected]
    assert valid_lines(batch) == [
        (first, "RFMM00000001", merchant_a.pk, str(pay_a.pk)),
        (first + 1, "RFMM00000001", merchant_c.pk, str(pay_c.pk)),
        (first + 9, "RFMM00000008", merchant_c.pk, str(pay_c.pk)),
    ]
    assert (batch.valid_lines, batch.valid_amount, batch.invalid_lines) == (3, 6000, 7)
    # one message for a merchant of another acquirer and for a number nobody has: nothing is revealed
    lines = {ln.line_no - first + 3: ln for ln in BatchLine.objects.filter(batch=batch)}
    for line_no, mer_id in ((6, merchant_b.code), (9, UNKNOWN_MER_ID)):
        line = lines[line_no]
        assert line.error_params == {"value": mer_id}
        assert str(render_message(line.error_code, line.error_params, refund_batch_kind())) == (
            f"The merchant number {mer_id} is not one of your merchants."
        )
    assert str(render_message("merid_required", {}, refund_batch_kind())) == (
        "Name the merchant of this line (merId): this file is for several merchants."
    )
    with translation.override("zh-hans"):
        assert str(render_message("merid_unknown", {"value": UNKNOWN_MER_ID}, refund_batch_kind())) == (
            f"商户号 {UNKNOWN_MER_ID} 不是贵机构的商户。"
        )
        assert str(render_message("merid_required", {}, refund_batch_kind())) == (
            "请填写本行的商户号（merId）：本文件包含多个商户的退货。"
        )
    assert (lines[8].error_params["line_no"], lines[11].error_params) == (
        first,
        {"amount": "40.01", "refundable": "40.00"},
    )


def test_only_a_single_merchant_batch_takes_the_set_based_path(uploader, operator_a, merchant_a, make_payment):
    payment = make_payment(merchant_a)
    multi = upload(
        uploader, text_file(text_batch([("RFMB00000001", 1, payment.query_id, merchant_a.code, "x")], columns=COLUMNS))
    )
    chosen = upload(uploader, text_file(text_batch([("RFMB00000002", 1, payment.query_id, "x")])), merchant=merchant_a)
    own = upload(operator_a, text_file(text_batch([("RFMB00000003", 1, payment.query_id, "x")])))
    kind = refund_batch_kind()

    assert kind.bulk_for(multi) is None
    assert kind.bulk_for(chosen) is kind.bulk
    assert kind.bulk_for(own) is kind.bulk
    assert [b.status for b in (multi, chosen, own)] == ["validated"] * 3


def test_an_acquirer_naming_one_merchant_keeps_the_single_merchant_rules(
    uploader, merchant_a, merchant_c, make_payment
):
    pay_a = make_payment(merchant_a)
    rows = [
        ("RFMS00000001", 100, pay_a.query_id, merchant_a.code, "a"),
        ("RFMS00000002", 100, pay_a.query_id, merchant_c.code, "b"),
    ]

    batch = upload(uploader, text_file(text_batch(rows, columns=COLUMNS)), merchant=merchant_a)

    assert batch.merchant_id == merchant_a.pk
    assert errors_of(batch) == [(4, "merId", "merid_mismatch")]


def test_order_ids_are_held_per_merchant_across_batches(uploader, operator_a, merchant_a, merchant_c, make_payment):
    pay_a = make_payment(merchant_a, amount=10000)
    pay_c = make_payment(merchant_c, amount=10000)
    upload(operator_a, text_file(text_batch([("RFMO00000001", 100, pay_a.query_id, "x")])))

    batch = upload(
        uploader,
        text_file(
            text_batch(
                [
                    ("RFMO00000001", 100, pay_a.query_id, merchant_a.code, "held by A's own batch"),
                    ("RFMO00000001", 100, pay_c.query_id, merchant_c.code, "free at C"),
                ],
                columns=COLUMNS,
            )
        ),
    )

    assert errors_of(batch) == [(3, "orderId", "duplicate_order_id")]
    assert valid_lines(batch) == [(4, "RFMO00000001", merchant_c.pk, str(pay_c.pk))]


def test_the_cap_holds_across_a_merchant_batch_and_an_acquirer_batch(
    uploader, operator_a, merchant_a, merchant_c, make_payment
):
    payment = make_payment(merchant_a, amount=10000)
    # the acquirer's file for several merchants first: the merchant's own file must count its lines
    multi = upload(
        uploader,
        text_file(text_batch([("RFMC00000001", 6000, payment.query_id, merchant_a.code, "x")], columns=COLUMNS)),
    )
    single = upload(
        operator_a,
        text_file(
            text_batch([("RFMC00000002", 4001, payment.query_id, "x"), ("RFMC00000003", 4000, payment.query_id, "y")])
        ),
    )
    # and the other way round: another acquirer file sees both
    again = upload(
        uploader,
        text_file(text_batch([("RFMC00000004", 1, payment.query_id, merchant_a.code, "z")], columns=COLUMNS)),
    )

    assert (multi.status, multi.valid_amount) == ("validated", 6000)
    assert errors_of(single) == [(3, "txnAmt", "amount_exceeds")]
    assert single.valid_amount == 4000
    assert (again.status, errors_of(again)) == ("invalid", [(3, "txnAmt", "amount_exceeds")])


def test_a_cancelled_acquirer_batch_releases_what_it_held(uploader, operator_a, merchant_a, make_payment):
    from portal.batches.services import batch_cancel

    payment = make_payment(merchant_a, amount=10000)
    multi = upload(
        uploader,
        text_file(text_batch([("RFMR00000001", 10000, payment.query_id, merchant_a.code, "x")], columns=COLUMNS)),
    )
    batch_cancel(actor=uploader, batch=multi)

    single = upload(operator_a, text_file(text_batch([("RFMR00000001", 10000, payment.query_id, "x")])))

    assert (single.status, single.valid_amount) == ("validated", 10000)


# --- approval ------------------------------------------------------------------------------------------


def test_acquirer_reviewers_decide_and_never_the_merchants(
    uploader, acq_reviewer2, reviewer_a, operator_a, merchant_a, make_payment, client_for
):
    payment = make_payment(merchant_a, amount=10000)
    batch = upload(
        uploader,
        text_file(text_batch([("RFMA00000001", 100, payment.query_id, merchant_a.code, "x")], columns=COLUMNS)),
    )
    with mock.patch("portal.batches.services._enqueue"):
        batch_submit(actor=uploader, batch=batch)
        request = ApprovalRequest.objects.get(pk=Batch.objects.get(pk=batch.pk).approval_id)
        stages = list(request.stages.order_by("index").values_list("role", "org_id"))

        assert request.organisation_id == uploader.organisation_id
        assert stages == [("acquirer_reviewer", uploader.organisation_id)]  # below the threshold: one stage
        assert request.policy_snapshot["acquirer_stand_in"] is True
        assert list(approvals_waiting_for(acq_reviewer2)) == [request]
        assert f"#{batch.pk} " in client_for(acq_reviewer2).get(reverse("approvals:inbox")).content.decode()
        assert f"#{batch.pk} " not in client_for(reviewer_a).get(reverse("approvals:inbox")).content.decode()
        assert list(approvals_waiting_for(uploader)) == []
        assert list(approvals_waiting_for(reviewer_a)) == []
        assert not ApprovalRequest.objects.visible_to(reviewer_a).filter(pk=request.pk).exists()
        assert not ApprovalRequest.objects.visible_to(operator_a).filter(pk=request.pk).exists()
        with pytest.raises(approval_errors.ApprovalNotFound):
            decide(reviewer_a, batch)
        with pytest.raises(approval_errors.OwnSubmission):
            decide(uploader, batch)
        decide(acq_reviewer2, batch)

    batch.refresh_from_db()
    assert batch.status == "approved"


def test_two_stages_above_the_threshold_need_two_distinct_acquirer_reviewers(
    settings, uploader, acq_reviewer2, acq_reviewer3, merchant_a, make_payment
):
    settings.APPROVAL_ACQUIRER_THRESHOLD_FEN = 5000
    payment = make_payment(merchant_a, amount=10000)
    batch = upload(
        uploader,
        text_file(text_batch([("RFMT00000001", 5000, payment.query_id, merchant_a.code, "x")], columns=COLUMNS)),
    )
    with mock.patch("portal.batches.services._enqueue"):
        batch_submit(actor=uploader, batch=batch)
        request = ApprovalRequest.objects.get(pk=Batch.objects.get(pk=batch.pk).approval_id)
        assert list(request.stages.order_by("index").values_list("role", "org_id")) == [
            ("acquirer_reviewer", uploader.organisation_id),
            ("acquirer_reviewer", uploader.organisation_id),
        ]
        decide(acq_reviewer2, batch)
        with pytest.raises(approval_errors.DecidedEarlierStage):
            decide(acq_reviewer2, batch)
        batch.refresh_from_db()
        assert batch.status == "pending_review"
        decide(acq_reviewer3, batch)

    batch.refresh_from_db()
    assert batch.status == "approved"


def test_policy_order_for_an_acquirer_request(uploader, acq_reviewer2, merchant_a, make_payment):
    acquirer = uploader.organisation
    stages_2 = [{"role": "merchant_reviewer", "org": "merchant"}, {"role": "acquirer_reviewer", "org": "acquirer"}]
    # the merchant's policy never applies to a file of several merchants
    ApprovalPolicy.objects.create(kind="refund.batch", organisation=merchant_a, stages=stages_2)
    default = ApprovalPolicy.objects.create(
        kind="refund.batch", organisation=None, stages=[{"role": "merchant_reviewer", "org": "merchant"}]
    )
    payment = make_payment(merchant_a, amount=10000)

    def submitted(order_id: str) -> ApprovalRequest:
        batch = upload(
            uploader,
            text_file(text_batch([(order_id, 100, payment.query_id, merchant_a.code, "x")], columns=COLUMNS)),
        )
        with mock.patch("portal.batches.services._enqueue"):
            batch_submit(actor=uploader, batch=batch)
        return ApprovalRequest.objects.get(pk=Batch.objects.get(pk=batch.pk).approval_id)

    by_default = submitted("RFMP00000001")
    own = ApprovalPolicy.objects.create(kind="refund.batch", organisation=acquirer, stages=stages_2)
    by_own = submitted("RFMP00000002")

    assert (by_default.policy_snapshot["policy_id"], by_default.stages.count()) == (default.pk, 1)
    assert (by_own.policy_snapshot["policy_id"], by_own.stages.count()) == (own.pk, 2)
    assert by_own.policy_snapshot["stages"] == stages_2  # the policy as it was, kept
    assert set(by_own.stages.values_list("role", "org_id")) == {("acquirer_reviewer", acquirer.pk)}


# --- processing, result file, visibility ------------------------------------------------------------


def _gateway_double():
    sent: list[tuple[str, str]] = []

    def send(*, mer_id, order_id, **kwargs):
        sent.append((mer_id, order_id))
        return gateway.Answer(gateway.ACCEPTED, {"respCode": "00", "respMsg": "ok"})

    def query(*, mer_id, order_id, **kwargs):
        return gateway.Answer(
            gateway.SUCCEEDED,
            {
                "respCode": "00",
                "origRespCode": "00",
                "origRespMsg": "成功",
                "queryId": f"Q{mer_id[-4:]}{order_id}"[:21],
                "settleDate": "0310",
                "traceNo": "123456",
                "traceTime": "0310120000",
            },
        )

    return sent, send, query


def test_each_line_is_sent_with_its_merchant_and_lands_in_its_ledger(
    uploader, acq_reviewer2, merchant_a, merchant_c, make_payment, django_capture_on_commit_callbacks
):
    pay_a = make_payment(merchant_a, amount=10000)
    pay_c = make_payment(merchant_c, amount=5000)
    rows = [
        ("RFMX00000001", 2500, pay_a.query_id, merchant_a.code, "a"),
        ("RFMX00000001", 5000, pay_c.query_id, merchant_c.code, "b"),
        ("RFMX00000002", 1, pay_a.query_id, "", "c"),
    ]
    batch = upload(uploader, text_file(text_batch(rows, columns=COLUMNS)))
    sent, send, query = _gateway_double()

    with (
        mock.patch.object(gateway, "send", side_effect=send),
        mock.patch.object(gateway, "query", side_effect=query),
        django_capture_on_commit_callbacks(execute=True),
    ):
        batch_submit(actor=uploader, batch=batch)
        decide(acq_reviewer2, batch)

    batch.refresh_from_db()
    assert (batch.status, batch.succeeded_lines, batch.succeeded_amount) == ("completed", 2, 7500)
    assert sorted(sent) == sorted([(merchant_a.code, "RFMX00000001"), (merchant_c.code, "RFMX00000001")])
    refunds = Transaction.objects.filter(order_id="RFMX00000001").order_by("merchant_id")
    assert [(t.merchant_id, t.amount, t.orig_query_id) for t in refunds] == sorted(
        [(merchant_a.pk, 2500, pay_a.query_id), (merchant_c.pk, 5000, pay_c.query_id)]
    )
    pay_a.refresh_from_db()
    pay_c.refresh_from_db()
    assert (pay_a.refunded_amount, pay_c.refunded_amount) == (2500, 5000)
    # the result file: the upload's columns (merId included) and the outcome
    with storage.open_plaintext(batch.result_name) as stream:
        text = stream.read().decode()
    lines = text.split("\r\n")
    assert lines[0] == "5.0.0|7501|3|||7500|2"
    title = lines[1].split("|")
    assert title[:3] == ["orderId", "txnAmt", "origQryId"]
    cols = [title.index(c) for c in ("orderId", "txnAmt", "origQryId", "merId", "reason")]
    assert [lines[2].split("|")[i] for i in cols] == ["RFMX00000001", "2500", pay_a.query_id, merchant_a.code, "a"]
    assert [lines[3].split("|")[i] for i in cols] == ["RFMX00000001", "5000", pay_c.query_id, merchant_c.code, "b"]
    assert lines[2].split("|")[-6:] == [
        "00",
        "成功",
        f"Q{merchant_a.code[-4:]}RFMX00000001",
        "0310",
        "123456",
        "0310120000",
    ]
    assert lines[4].split("|")[cols[3]] == ""
    assert lines[4].split("|")[-6] == ""  # refused at validation: no response code


def test_merchant_users_do_not_see_an_acquirer_batch(
    uploader, operator_a, reviewer_a, merchant_a, merchant_c, make_payment, client_for
):
    payment = make_payment(merchant_a, amount=10000)
    batch = upload(
        uploader,
        text_file(text_batch([("RFMV00000001", 100, payment.query_id, merchant_a.code, "x")], columns=COLUMNS)),
    )
    with mock.patch("portal.batches.services._enqueue"):
        batch_submit(actor=uploader, batch=batch)

    for user in (operator_a, reviewer_a):
        assert not refund_batches_visible_to(user).filter(pk=batch.pk).exists()
        assert client_for(user).get(f"/refunds/batches/{batch.pk}/").status_code == 404
    with pytest.raises(BatchError) as cancel:
        from portal.batches.services import batch_cancel

        batch_cancel(actor=operator_a, batch=batch)
    assert (cancel.value.code, cancel.value.status) == ("not_found", 404)
    assert client_for(uploader).get(f"/refunds/batches/{batch.pk}/").status_code == 200
    listing = client_for(uploader).get("/refunds/?tab=batches").content.decode()
    assert f"/refunds/batches/{batch.pk}/" in listing
    assert "Several merchants" in listing
    assert f"/refunds/batches/{batch.pk}/" not in client_for(operator_a).get("/refunds/?tab=batches").content.decode()
