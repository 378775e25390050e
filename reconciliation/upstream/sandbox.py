"""The sandbox's upstream files: ``SANDBOX_DIR/files/{merId}_{YYYYMMDD}.zip`` built from the sandbox's own
transactions (the network side) with the shared codec, so the file-transfer transaction (76) has something to serve.

The sandbox calls :func:`sandbox_upstream_zip` through ``payments.sandbox.services.UPSTREAM_FILE_BUILDER`` (set in
:func:`register`) when a file is asked for and missing; ``manage.py sandbox_upstream_files`` builds them by hand.
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

from django.conf import settings
from django.utils import timezone

from payments.gateway.acp.reconfiles import ZMRecord, build_zip, iter_zm_lines
from payments.settlement import settlement_window
from reconciliation.ledger import FeeBook, fee_return_rule, settle_line

#: The sandbox network's institution codes (any 8+ digits; the official sample uses these shapes).
ACQUIRER_CODE = "00049992"
SENDER_CODE = "00049992"
_TXN_CODES = {"01": "S22", "04": "S30", "31": "S31", "11": "S22", "12": "S22"}


def _fee_line(txn, merchant_id: int | None, book, rule):
    """The network charges the merchant's agreed rates: the settlement fee rules applied to the sandbox row."""
    from payments.sandbox.models import SandboxTransaction

    from .fees import _Row

    orig = None
    if txn.orig_query_id:
        found = SandboxTransaction.objects.filter(query_id=txn.orig_query_id).first()
        if found is not None:
            orig = _Row(found.txn_type, found.amount, merchant_id, found.card_type, None, None)
    row = _Row(txn.txn_type, txn.amount, merchant_id, txn.card_type, 1 if orig else None, orig)
    return settle_line(row, book, rule)


def _record(txn, mcc: str, merchant_id: int | None = None, book=None, rule: str = "none") -> ZMRecord:
    line = _fee_line(txn, merchant_id, book or FeeBook(), rule)
    return ZMRecord(
        txn_code=_TXN_CODES.get(txn.txn_type, "S22"),
        acquirer_code=ACQUIRER_CODE,
        sender_code=SENDER_CODE,
        trace_no=txn.trace_no,
        trans_time=txn.trace_time,
        pan=txn.card_masked,
        amount=txn.amount,
        mcc=mcc,
        terminal_type=txn.channel_type,
        query_id=txn.query_id,
        order_id=txn.order_id,
        pay_card_type=txn.card_type,
        merchant_fee=line.fee,
        settle_amount=line.settlement,
        txn_type=txn.txn_type,
        txn_sub_type=txn.txn_sub_type,
        biz_type=txn.biz_type,
        orig_query_id=txn.orig_query_id,
        mer_id=txn.mer_id,
    )


def sandbox_upstream_zip(mer_id: str, settle_date: date, *, now: datetime | None = None) -> Path | None:
    """Write the zip of ``mer_id``'s successful sandbox transactions of ``settle_date``; None before the day is over
    or when the sandbox has none. The file is rebuilt each time (deterministic: same rows, same bytes)."""
    from payments.sandbox.models import SandboxStatus, SandboxTransaction
    from portal.accounts.models import Organisation

    if settlement_window(settle_date)[1] > (now or timezone.now()):
        return None
    rows = SandboxTransaction.objects.filter(
        mer_id=mer_id, settle_date=settle_date, status=SandboxStatus.SUCCESS
    ).order_by("txn_time", "id")
    if not rows.exists():
        return None
    org = Organisation.objects.filter(code=mer_id).first()
    mcc = getattr(org, "mcc", "") or ""
    book, rule, merchant_id = FeeBook(), fee_return_rule(), getattr(org, "pk", None)
    zm = b"".join(iter_zm_lines(_record(txn, mcc, merchant_id, book, rule) for txn in rows.iterator()))
    name, data = build_zip(mer_id=mer_id, settle_date=settle_date, zm=zm)
    directory = Path(settings.SANDBOX_DIR) / "files"
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
    return path


def register() -> None:
    """Let the sandbox build missing upstream files on demand (only when the sandbox app is installed)."""
    from django.apps import apps

    if not apps.is_installed("payments.sandbox"):
        return
    from payments.sandbox import services

    if hasattr(services, "UPSTREAM_FILE_BUILDER"):
        services.UPSTREAM_FILE_BUILDER = sandbox_upstream_zip
