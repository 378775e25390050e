"""Our network-format files of a merchant day (formats.md §6): ZM detail, ZME adjustments, RD summary, the zip.

On PostgreSQL the database prices the ZM lines and sums the RD report (``network_pg``: the same bytes, ~6× faster).
The ZM lines come from the ledger rows of the settlement day through ``ledger.settle_line``, so the file's totals
equal the day's ``MerchantSettlement``. ZME lines come from registered adjustment sources (the upstream
discrepancy workbench registers one): with none, the ZME member is an empty file.
"""

from __future__ import annotations

import zipfile
from collections.abc import Callable, Iterable, Iterator
from datetime import date, timedelta
from typing import BinaryIO

from payments.gateway.acp.reconfiles import (
    ZMERecord,
    ZMRecord,
    build_rd,
    iter_zm_lines,
    rd_name,
    write_rd,
    write_zme,
    zip_name,
    zm_name,
    zme_name,
)
from payments.gateway.acp.reconfiles.archive import FIXED_DATE_TIME
from payments.models import Transaction
from payments.settlement import business_tz
from portal.accounts.models import Organisation

from ..ledger import PAYMENT, VOID, FeeBook, SettleLine, iter_settle_lines
from . import network_pg

TXN_CODES = {PAYMENT: "S22", VOID: "S31"}
REFUND_CODE = "S30"

# Callables ``(merchant, day) -> iterable of ZMERecord``; the upstream app registers its adjustments here.
ZME_SOURCES: list[Callable[[Organisation, date], Iterable[ZMERecord]]] = []


def register_zme_source(source: Callable[[Organisation, date], Iterable[ZMERecord]]) -> None:
    """Add a source of ZME lines (adjustments and errors) for a merchant day; idempotent."""
    if source not in ZME_SOURCES:
        ZME_SOURCES.append(source)


def _fit(text: str, width: int) -> str:
    """``text`` cut to ``width`` GBK bytes (characters GBK cannot hold become ``?``; no control characters)."""
    text = "".join(ch if ch.isprintable() else " " for ch in text or "")
    data = text.encode("gbk", errors="replace")[:width]
    return data.decode("gbk", errors="ignore")


def _trace_time(txn: Transaction) -> str:
    if len(txn.trace_time) == 10 and txn.trace_time.isdigit():
        return txn.trace_time
    return txn.txn_time.astimezone(business_tz()).strftime("%m%d%H%M%S")


def zm_record(txn: Transaction, line: SettleLine) -> ZMRecord:
    """The ZM line of one ledger row (amounts in fen; fee and settlement signed, written as D/C)."""
    orig = txn.orig if txn.orig_id else None
    acquirer_code = txn.acquirer.code[:11]
    return ZMRecord(
        txn_code=TXN_CODES.get(line.category, REFUND_CODE),
        acquirer_code=acquirer_code,
        sender_code=acquirer_code,
        trace_no=(txn.trace_no or "")[:6],
        trans_time=_trace_time(txn),
        pan=txn.card_masked,
        amount=txn.amount,
        mcc=txn.merchant.mcc,
        terminal_type=txn.channel_type[:2],
        query_id=txn.query_id or "",
        order_id=_fit(txn.order_id, 32),
        pay_card_type=txn.card_type,
        orig_trace_no=(orig.trace_no if orig else "")[:6],
        orig_trans_time=_trace_time(orig) if orig else "",
        merchant_fee=line.fee,
        settle_amount=line.settlement,
        txn_type=txn.txn_type,
        txn_sub_type=txn.txn_sub_type[:2],
        biz_type=txn.biz_type[:6],
        orig_query_id=txn.orig_query_id or (orig.query_id or "" if orig else ""),
        mer_id=txn.merchant.code,
        net_amount=line.settlement,
        mer_reserved=_fit(txn.req_reserved, 32),
        orig_order_id=_fit(orig.order_id, 32) if orig else "",
    )


def zm_records_for(merchant: Organisation, day: date, *, book: FeeBook | None = None) -> Iterator[ZMRecord]:
    """The ZM records of ``merchant`` for settlement day ``day`` (streamed, in transmission order)."""
    for txn, line in iter_settle_lines(day, [merchant.pk], book=book):
        yield zm_record(txn, line)


def zme_records_for(merchant: Organisation, day: date) -> list[ZMERecord]:
    """The ZME records (adjustments and errors) of a merchant day from the registered sources; often none."""
    records: list[ZMERecord] = []
    for source in ZME_SOURCES:
        records.extend(source(merchant, day))
    return records


def _fast_path(merchant: Organisation) -> bool:
    """PostgreSQL builds the ZM lines and the RD sums (``network_pg``), byte for byte as the Python path below."""
    return network_pg.available() and network_pg.merchant_simple(merchant)


def iter_zm_chunks(merchant: Organisation, day: date) -> Iterator[bytes]:
    """The ZM file of the merchant day as byte chunks of whole CRLF lines, streamed in transmission order.

    On PostgreSQL the database sends the lines' fields (``COPY … TO STDOUT``) and Python packs them (~6× faster);
    elsewhere the ZM codec writes :func:`zm_records_for`. Both give the same bytes.
    """
    if _fast_path(merchant):
        yield from network_pg.zm_chunks(merchant, day)
        return
    batch: list[bytes] = []
    for line in iter_zm_lines(zm_records_for(merchant, day)):
        batch.append(line)
        if len(batch) >= 2000:
            yield b"".join(batch)
            batch.clear()
    if batch:
        yield b"".join(batch)


def write_zm_file(merchant: Organisation, day: date, out: BinaryIO) -> None:
    """Write the ZM file ``INN{YYMMDD}88ZM_{merId}`` of the merchant day to the binary stream ``out``."""
    for chunk in iter_zm_chunks(merchant, day):
        out.write(chunk)


def rd_bytes(merchant: Organisation, day: date) -> bytes:
    """The RD summary report of the merchant day (its 生成日期 is T+1, so the bytes do not depend on the clock)."""
    facts = {
        "acquirer_code": merchant.acquirer.code if merchant.acquirer_id else "",
        "merchant_name": _fit(merchant.name_zh, 60),
        "generated_date": day + timedelta(days=1),
    }
    if _fast_path(merchant):
        return write_rd(network_pg.build_rd_report(merchant, day, **facts))
    report = build_rd(zm_records_for(merchant, day), mer_id=merchant.code, settle_date=day, **facts)
    return write_rd(report)


def _member(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=FIXED_DATE_TIME)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.create_system = 3
    info.external_attr = 0o100644 << 16
    return info


def write_merchant_zip(merchant: Organisation, day: date, out: BinaryIO) -> str:
    """Write ``{merId}_{YYYYMMDD}.zip`` (ZM, ZME, RD; fixed timestamps) to the seekable stream ``out``; its name.

    The ZM member is streamed in chunks (:func:`iter_zm_chunks`), so a day of a million transactions never sits in
    memory.
    """
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as archive:
        with archive.open(_member(zm_name(day, merchant.code)), "w", force_zip64=True) as member:
            for chunk in iter_zm_chunks(merchant, day):
                member.write(chunk)
        archive.writestr(_member(zme_name(day, merchant.code)), write_zme(zme_records_for(merchant, day)))
        archive.writestr(_member(rd_name(day, merchant.code)), rd_bytes(merchant, day))
    return zip_name(day, merchant.code)
