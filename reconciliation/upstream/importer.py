"""Import of an upstream reconciliation file: a zip or a single ZM / ZME file, from an upload, the command or the
gateway's file transfer. One write path: :func:`reconciliation_import`.

An import completes fully (run, records, discrepancies and audit event in one transaction) or leaves only its
failure record, written after the import's transaction rolled back. Records are streamed from the parser into the
database in chunks (PostgreSQL ``COPY`` when available), so memory stays flat for a single file of any size.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from payments.gateway.acp.reconfiles import (
    ArchiveError,
    LineError,
    ReconFileError,
    ZMERecord,
    ZMRecord,
    is_zip,
    parse_member_name,
    parse_zm,
    parse_zme,
    read_archive,
)
from payments.gateway.acp.reconfiles.archive import ZM, ZME
from payments.gateway.acp.reconfiles.layout import ZM_LINE_LENGTH, ZME_LINE_LENGTH
from payments.settlement import business_today, settlement_window
from portal.accounts.models import Organisation, OrganisationKind
from portal.audit.models import AuditOutcome
from portal.audit.services import audit_record

from .choices import FileKind, RecordKind, RunSource, RunStatus
from .matching import match_run
from .models import ReconciliationRun, UpstreamRecord

logger = logging.getLogger(__name__)

#: Line errors kept on a run (the count is always exact).
MAX_LINE_ERRORS = 200
_CHUNK = 5000


class ImportRefused(Exception):
    """The file cannot be imported; ``message`` is for the user (translated), ``code`` is stable."""

    def __init__(self, code: str, message: str, *, earlier_run: ReconciliationRun | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.earlier_run = earlier_run


@dataclass
class _Input:
    """What the file holds before it is parsed: kind, merchant number, settlement date, and the sources."""

    file_kind: str
    mer_id: str
    settle_date: date | None
    zm: object | None = None  # bytes or a binary stream
    zme: object | None = None


_PROBLEMS = {
    "length": lambda: _("wrong line length"),
    "encoding": lambda: _("not GBK text (wrong encoding)"),
    "separator": lambda: _("fields are misaligned"),
}


def describe_line_error(error: LineError) -> str:
    """A line error in the user's language (the codec's English detail in brackets)."""
    problem = _PROBLEMS.get(error.code, lambda: _("invalid field"))()
    return _("Line %(line)s: %(problem)s (%(detail)s)") % {
        "line": error.line_no,
        "problem": problem,
        "detail": error.message,
    }


def _sha256(data: bytes | None, path: Path | None) -> tuple[str, int]:
    digest = hashlib.sha256()
    if data is not None:
        digest.update(data)
        return digest.hexdigest(), len(data)
    size = 0
    with path.open("rb") as stream:
        for chunk in iter(lambda: stream.read(1024 * 1024), b""):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def _first_line(head: bytes) -> bytes:
    for raw in head.split(b"\n")[:20]:
        raw = raw.rstrip(b"\r")
        if raw.strip():
            return raw
    return b""


def _inspect(data: bytes | None, path: Path | None, file_name: str) -> _Input:
    """Open the input (zip or single file) and tell its kind, merchant and settlement date from the names."""
    if data is None:
        with path.open("rb") as stream:
            head = stream.read(4096)
    else:
        head = data[:4096]
    if is_zip(head):
        if data is None:
            data = path.read_bytes()
        try:
            archive = read_archive(data)
        except ArchiveError as exc:
            raise ImportRefused(
                "bad_zip", _("The zip file is truncated or damaged and cannot be read (%(detail)s).") % {"detail": exc}
            ) from None
        members = [m for m in (archive.zm, archive.zme) if m is not None]
        if len({(m.mer_id, m.settle_date) for m in members}) > 1:
            raise ImportRefused("mixed", _("The ZM and ZME files of the zip are for different merchants or days."))
        first = members[0]
        return _Input(
            FileKind.ZIP,
            first.mer_id,
            first.settle_date,
            zm=archive.zm.data if archive.zm else None,
            zme=archive.zme.data if archive.zme else None,
        )
    named = parse_member_name(file_name) if file_name else None
    kind = named.kind if named is not None and named.kind in (ZM, ZME) else None
    if kind is None:
        line = _first_line(head)
        if not line:
            raise ImportRefused("empty", _("The file is empty."))
        kind = ZM if len(line) > (ZM_LINE_LENGTH + ZME_LINE_LENGTH) // 2 else ZME
    source: object = data if data is not None else path
    if named is None:
        raise ImportRefused(
            "unnamed",
            _(
                "Cannot tell the merchant and settlement date: name the file as the network does "
                "(INN{YYMMDD}88ZM_{merId}) or upload the zip."
            ),
        )
    return _Input(kind, named.mer_id, named.settle_date, **{kind: source})


@dataclass
class _Counts:
    count: int = 0
    amount: int = 0
    fee: int = 0
    settlement: int = 0


class _Loader:
    """Writes records to ``UpstreamRecord`` in chunks: ``COPY`` on PostgreSQL, ``executemany`` elsewhere."""

    columns = (
        "run_id",
        "kind",
        "line_no",
        "txn_code",
        "txn_type",
        "query_id",
        "order_id",
        "trace_no",
        "trans_time",
        "transmitted_at",
        "card_masked",
        "card_type",
        "amount",
        "merchant_fee",
        "settle_amount",
        "orig_query_id",
        "biz_type",
    )

    def __init__(self) -> None:
        self.rows: list[tuple] = []
        self.postgres = connection.vendor == "postgresql"

    def add(self, row: tuple) -> None:
        self.rows.append(row)
        if len(self.rows) >= _CHUNK:
            self.flush()

    def flush(self) -> None:
        if not self.rows:
            return
        table = UpstreamRecord._meta.db_table
        cols = ", ".join(self.columns)
        if self.postgres:
            raw = connection.connection  # the psycopg connection of this (atomic) Django connection
            with raw.cursor() as cursor, cursor.copy(f"COPY {table} ({cols}) FROM STDIN") as copy:
                for row in self.rows:
                    copy.write_row(row)
        else:
            adapt = connection.ops.adapt_datetimefield_value
            rows = [row[:9] + (adapt(row[9]),) + row[10:] for row in self.rows]
            marks = ", ".join(["%s"] * len(self.columns))
            with connection.cursor() as cursor:
                cursor.executemany(f"INSERT INTO {table} ({cols}) VALUES ({marks})", rows)
        self.rows = []


def _parse(source: object, parser) -> Iterator:
    if isinstance(source, Path):
        with source.open("rb") as stream:
            yield from parser(stream)
    else:
        yield from parser(source)


def _load(
    run: ReconciliationRun, kind: str, items: Iterable, loader: _Loader, errors: list[LineError]
) -> tuple[_Counts, int]:
    counts = _Counts()
    failed = 0
    settle = run.settle_date
    for item in items:
        ordinal = counts.count + failed + 1  # the n-th non-blank line
        if isinstance(item, LineError):
            failed += 1
            if len(errors) < MAX_LINE_ERRORS:
                errors.append(item)
            continue
        record: ZMRecord | ZMERecord = item
        if record.mer_id and record.mer_id != run.mer_id:
            failed += 1
            if len(errors) < MAX_LINE_ERRORS:
                errors.append(LineError(ordinal, f"merchant number {record.mer_id} is not the file's", code="merchant"))
            continue
        try:
            moment = record.transmitted_at(settle)
        except ReconFileError as exc:
            failed += 1
            if len(errors) < MAX_LINE_ERRORS:
                errors.append(LineError(ordinal, str(exc), code="invalid"))
            continue
        counts.count += 1
        counts.amount += record.amount
        counts.fee += record.merchant_fee or 0
        counts.settlement += record.settle_amount or 0
        is_zm = kind == RecordKind.ZM
        loader.add(
            (
                run.pk,
                kind,
                ordinal,
                record.txn_code[:3],
                record.txn_type[:2] if is_zm else "",
                record.query_id[:21] if is_zm else "",
                record.order_id[:40] if is_zm else "",
                record.trace_no[:6],
                record.trans_time[:10],
                moment,
                record.pan[:19],
                record.pay_card_type[:2],
                record.amount,
                record.merchant_fee,
                record.settle_amount,
                record.orig_query_id[:21] if is_zm else "",
                record.biz_type[:6] if is_zm else "",
            )
        )
    return counts, failed


def _fail(
    *,
    actor,
    source: str,
    file_name: str,
    sha256: str,
    size: int,
    refused: ImportRefused,
    info: _Input | None,
    merchant: Organisation | None,
    now: datetime,
) -> ReconciliationRun:
    """The failure record of an import, written in its own transaction (the import's was rolled back)."""
    with transaction.atomic():
        run = ReconciliationRun.objects.create(
            source=source,
            merchant=merchant,
            mer_id=(info.mer_id if info else "")[:32],
            settle_date=info.settle_date if info else None,
            file_kind=info.file_kind if info else "",
            file_name=file_name[:255],
            file_size=size,
            sha256=sha256,
            status=RunStatus.FAILED,
            error_code=refused.code,
            error=refused.message,
            earlier_run=refused.earlier_run,
            created_by=actor if getattr(actor, "pk", None) else None,
            created_at=now,
        )
        audit_record(
            action="reconciliation.import",
            actor=actor,
            actor_repr=None if actor else f"reconciliation:{source}",
            organisation=merchant,
            obj=run,
            outcome=AuditOutcome.FAILURE,
            details={"code": refused.code, "sha256": sha256, "file": file_name[:255]},
        )
    return run


def _merchant(actor, mer_id: str) -> Organisation | None:
    merchants = Organisation.objects.filter(kind=OrganisationKind.MERCHANT, code=mer_id)
    if actor is not None:
        merchants = merchants.visible_to(actor)
    return merchants.first()


def reconciliation_import(
    *,
    actor,
    source: str,
    file_name: str = "",
    data: bytes | None = None,
    path: str | Path | None = None,
    now: datetime | None = None,
) -> ReconciliationRun:
    """Import one upstream file and match it against the ledger; return the run (completed or failed).

    ``data`` (an upload, a file transfer) or ``path`` (the command). Refused, with a failure record and an audit
    event of outcome ``failure``: a damaged zip, an unnamed single file, a merchant unknown (or not visible to
    ``actor``), a settlement day in the future or not finished yet (before T 23:00 Beijing), a file already imported
    for that merchant (``earlier_run`` points at the first import), and a file whose every line is malformed.
    Some malformed lines are reported with their line numbers on the run and the other lines are imported.
    """
    if source not in RunSource.values:
        raise ValueError(f"unknown source {source!r}")
    if (data is None) == (path is None):
        raise ValueError("give data or path")
    now = now or timezone.now()
    path = Path(path) if path is not None else None
    file_name = file_name or (path.name if path else "")
    sha256, size = _sha256(data, path)
    info: _Input | None = None
    merchant: Organisation | None = None
    try:
        info = _inspect(data, path, file_name)
        merchant = _merchant(actor, info.mer_id)
        if merchant is None:
            raise ImportRefused(
                "unknown_merchant",
                _("The file is for merchant %(mer_id)s, which is not known.") % {"mer_id": info.mer_id},
            )
        day = info.settle_date
        if day > business_today(now):
            raise ImportRefused("future", _("The settlement date %(day)s is in the future.") % {"day": day.isoformat()})
        if settlement_window(day)[1] > now:
            raise ImportRefused(
                "not_closed",
                _("Settlement day %(day)s is not finished yet (it closes at 23:00 Beijing time).")
                % {"day": day.isoformat()},
            )
        return _import(
            actor=actor,
            source=source,
            file_name=file_name,
            sha256=sha256,
            size=size,
            info=info,
            merchant=merchant,
            now=now,
        )
    except ImportRefused as refused:
        return _fail(
            actor=actor,
            source=source,
            file_name=file_name,
            sha256=sha256,
            size=size,
            refused=refused,
            info=info,
            merchant=merchant,
            now=now,
        )


def _import(*, actor, source, file_name, sha256, size, info: _Input, merchant, now) -> ReconciliationRun:
    with transaction.atomic():
        earlier = (
            ReconciliationRun.objects.select_for_update()
            .filter(merchant=merchant, file_kind=info.file_kind, sha256=sha256, status=RunStatus.COMPLETED)
            .first()
        )
        if earlier is not None:
            raise ImportRefused(
                "duplicate",
                _("This file was already imported (run %(run)s on %(when)s).")
                % {"run": earlier.pk, "when": timezone.localtime(earlier.created_at).strftime("%Y-%m-%d %H:%M")},
                earlier_run=earlier,
            )
        run = ReconciliationRun.objects.create(
            source=source,
            merchant=merchant,
            mer_id=info.mer_id,
            settle_date=info.settle_date,
            file_kind=info.file_kind,
            file_name=file_name[:255],
            file_size=size,
            sha256=sha256,
            status=RunStatus.COMPLETED,
            created_by=actor if getattr(actor, "pk", None) else None,
            created_at=now,
        )
        loader = _Loader()
        errors: list[LineError] = []
        detail, failed = _Counts(), 0
        adjust, failed_adjust = _Counts(), 0
        if info.zm is not None:
            detail, failed = _load(run, RecordKind.ZM, _parse(info.zm, parse_zm), loader, errors)
        if info.zme is not None:
            adjust, failed_adjust = _load(run, RecordKind.ZME, _parse(info.zme, parse_zme), loader, errors)
        loader.flush()
        error_count = failed + failed_adjust
        if detail.count + adjust.count == 0 and error_count:
            first = describe_line_error(errors[0]) if errors else ""
            raise ImportRefused(
                "all_lines_failed",
                _("Every line of the file is malformed (%(count)s lines); nothing was imported. %(first)s")
                % {"count": error_count, "first": first},
            )
        run.record_count, run.amount_total = detail.count, detail.amount
        run.fee_total, run.settlement_total = detail.fee, detail.settlement
        run.adjustment_count, run.adjustment_amount = adjust.count, adjust.amount
        run.adjustment_fee, run.adjustment_settlement = adjust.fee, adjust.settlement
        run.error_count = error_count
        run.line_errors = [{"line": e.line_no, "code": e.code, "message": describe_line_error(e)} for e in errors]
        run.class_totals = match_run(run, now=now)
        run.save()
        audit_record(
            action="reconciliation.import",
            actor=actor,
            actor_repr=None if actor else f"reconciliation:{source}",
            organisation=merchant,
            obj=run,
            details={
                "sha256": sha256,
                "settle_date": info.settle_date.isoformat(),
                "records": detail.count,
                "amount": detail.amount,
                "adjustments": adjust.count,
                "malformed_lines": error_count,
                "discrepancies": sum(v["count"] for k, v in run.class_totals.items() if k != "matched"),
            },
        )
    return run
