"""Import of an upstream reconciliation file: a zip or a single ZM / ZME file, from an upload, the command or the
gateway's file transfer. One write path: :func:`reconciliation_import`.

An import completes fully (run, records, discrepancies and audit event in one transaction) or leaves only its
failure record, written after the import's transaction rolled back. Records are streamed from the parser into the
database in chunks (PostgreSQL ``COPY`` when available), so memory stays flat for a single file of any size.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import struct
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import BinaryIO

from django.db import connection, transaction
from django.db.models import Count, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext as _

from payments.gateway.acp.reconfiles import (
    LineError,
    ReconFileError,
    ZMERecord,
    ZMRecord,
    is_zip,
    parse_member_name,
)
from payments.gateway.acp.reconfiles._fixed import is_blank, iter_lines
from payments.gateway.acp.reconfiles.archive import MAX_MEMBER_SIZE, MAX_MEMBERS, MAX_TOTAL_SIZE, RD, ZM, ZME
from payments.gateway.acp.reconfiles.layout import ZM_LINE_LENGTH, ZME_LINE_LENGTH
from payments.gateway.acp.reconfiles.zm import ZM_CODEC
from payments.gateway.acp.reconfiles.zme import ZME_CODEC
from payments.settlement import business_today, settlement_window
from portal.accounts.models import Organisation, OrganisationKind
from portal.audit.models import AuditOutcome
from portal.audit.services import audit_record

from . import fastload
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


Opener = Callable[[], contextlib.AbstractContextManager[BinaryIO]]

#: What a damaged zip raises while a member is read (truncated, corrupt, bad CRC, unknown compression).
_DAMAGED = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    zlib.error,
    EOFError,
    struct.error,
    NotImplementedError,
    RuntimeError,
    ValueError,
)


class _DamagedMember(Exception):
    """A zip member turned out damaged while it was streamed (becomes ImportRefused "bad_zip")."""


@dataclass
class _Input:
    """What the file holds before it is parsed: kind, merchant number, settlement date, and how to open the ZM and
    ZME contents as binary streams (never read whole into memory)."""

    file_kind: str
    mer_id: str
    settle_date: date | None
    zm: Opener | None = None
    zme: Opener | None = None


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


def _plain_opener(data: bytes | None, path: Path | None) -> Opener:
    @contextlib.contextmanager
    def opener() -> Iterator[BinaryIO]:
        if data is not None:
            yield io.BytesIO(data)
        else:
            with path.open("rb") as stream:
                yield stream

    return opener


def _member_opener(data: bytes | None, path: Path | None, info: zipfile.ZipInfo) -> Opener:
    """Open a zip member as a stream (``ZipFile.open``): a million-line ZM is never held in memory."""

    @contextlib.contextmanager
    def opener() -> Iterator[BinaryIO]:
        try:
            archive = zipfile.ZipFile(io.BytesIO(data) if data is not None else path)
            with archive, archive.open(info) as stream:
                yield _CheckedStream(stream, info.filename)
        except _DAMAGED as exc:
            raise _DamagedMember(f"zip member {info.filename!r} is truncated or corrupt ({exc})") from None

    return opener


class _CheckedStream:
    """A member stream whose damage (bad CRC, truncated deflate data) surfaces as :class:`_DamagedMember`."""

    def __init__(self, stream: BinaryIO, name: str) -> None:
        self._stream = stream
        self._name = name

    def read(self, size: int = -1) -> bytes:
        try:
            return self._stream.read(size)
        except _DAMAGED as exc:
            raise _DamagedMember(f"zip member {self._name!r} is truncated or corrupt ({exc})") from None

    def __iter__(self) -> Iterator[bytes]:
        pending = b""
        while chunk := self.read(1024 * 1024):
            lines = (pending + chunk).split(b"\n")
            pending = lines.pop()
            for line in lines:
                yield line + b"\n"
        if pending:
            yield pending


def _zip_members(data: bytes | None, path: Path | None) -> dict[str, tuple[zipfile.ZipInfo, object]]:
    """The ZM / ZME / RD members of a reconciliation zip, checked as the codec's ``read_archive`` checks them
    (names, duplicates, encryption, declared sizes) but without inflating anything."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data) if data is not None else path)
    except (*_DAMAGED, OSError):
        raise ImportRefused(
            "bad_zip",
            _("The zip file is truncated or damaged and cannot be read (%(detail)s).")
            % {"detail": "the zip file is truncated or corrupt (no readable central directory)"},
        ) from None
    found: dict[str, tuple[zipfile.ZipInfo, object]] = {}
    with archive:
        infos = archive.infolist()
        problem = ""
        if len(infos) > MAX_MEMBERS:
            problem = f"the zip holds {len(infos)} members, at most {MAX_MEMBERS} are accepted"
        total = 0
        for info in infos:
            named = None if info.is_dir() or problem else parse_member_name(info.filename)
            if named is None:
                continue
            total += info.file_size
            if named.kind in found:
                problem = f"the zip holds two {named.kind.upper()} files"
            elif info.flag_bits & 0x1:
                problem = f"zip member {info.filename!r} is encrypted"
            elif info.file_size > MAX_MEMBER_SIZE:
                problem = f"zip member {info.filename!r} is larger than {MAX_MEMBER_SIZE} bytes"
            elif total > MAX_TOTAL_SIZE:
                problem = f"the zip inflates beyond {MAX_TOTAL_SIZE} bytes"
            found[named.kind] = (info, named)
        if not problem and ZM not in found and ZME not in found:
            problem = "the zip holds no ZM or ZME reconciliation file"
    if problem:
        raise ImportRefused(
            "bad_zip",
            _("The zip file is truncated or damaged and cannot be read (%(detail)s).") % {"detail": problem},
        )
    return found


def _inspect(data: bytes | None, path: Path | None, file_name: str) -> _Input:
    """Open the input (zip or single file) and tell its kind, merchant and settlement date from the names."""
    if data is None:
        with path.open("rb") as stream:
            head = stream.read(4096)
    else:
        head = data[:4096]
    if is_zip(head):
        found = _zip_members(data, path)
        members = [found[kind] for kind in (ZM, ZME) if kind in found]
        if len({(named.mer_id, named.settle_date) for _info, named in members}) > 1:
            raise ImportRefused("mixed", _("The ZM and ZME files of the zip are for different merchants or days."))
        named = members[0][1]
        openers = {kind: _member_opener(data, path, found[kind][0]) for kind in (ZM, ZME) if kind in found}
        found.pop(RD, None)  # the summary report is not imported
        return _Input(FileKind.ZIP, named.mer_id, named.settle_date, **openers)
    named = parse_member_name(file_name) if file_name else None
    kind = named.kind if named is not None and named.kind in (ZM, ZME) else None
    if kind is None:
        line = _first_line(head)
        if not line:
            raise ImportRefused("empty", _("The file is empty."))
        kind = ZM if len(line) > (ZM_LINE_LENGTH + ZME_LINE_LENGTH) // 2 else ZME
    if named is None:
        raise ImportRefused(
            "unnamed",
            _(
                "Cannot tell the merchant and settlement date: name the file as the network does "
                "(INN{YYMMDD}88ZM_{merId}) or upload the zip."
            ),
        )
    return _Input(kind, named.mer_id, named.settle_date, **{kind: _plain_opener(data, path)})


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


@dataclass
class _Errors:
    """Malformed lines of a run: the exact count, and the first ``MAX_LINE_ERRORS`` of them."""

    failed: int = 0
    kept: list[LineError] = field(default_factory=list)

    def add(self, error: LineError) -> None:
        self.failed += 1
        if len(self.kept) < MAX_LINE_ERRORS:
            self.kept.append(error)


def _accept(run: ReconciliationRun, kind: str, line_no: int, item: object, loader: _Loader, errors: _Errors) -> None:
    """Check a codec result against the run (merchant, time) and queue it as a record, or count its error."""
    if isinstance(item, LineError):
        errors.add(item)
        return
    record: ZMRecord | ZMERecord = item
    if record.mer_id and record.mer_id != run.mer_id:
        errors.add(LineError(line_no, f"merchant number {record.mer_id} is not the file's", code="merchant"))
        return
    try:
        moment = record.transmitted_at(run.settle_date)
    except ReconFileError as exc:
        errors.add(LineError(line_no, str(exc), code="invalid"))
        return
    is_zm = kind == RecordKind.ZM
    loader.add(
        (
            run.pk,
            kind,
            line_no,
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


def _load_with_codec(run: ReconciliationRun, kind: str, opener: Opener, loader: _Loader, errors: _Errors) -> None:
    """Every line through the codec (any database; ZME files, and ZM files off PostgreSQL)."""
    codec = ZM_CODEC if kind == RecordKind.ZM else ZME_CODEC
    with opener() as stream:
        for line_no, raw in iter_lines(stream):
            if not is_blank(raw):
                _accept(run, kind, line_no, codec.parse_line(raw, line_no), loader, errors)
    loader.flush()


def _load_zm_fast(run: ReconciliationRun, opener: Opener, loader: _Loader, errors: _Errors) -> None:
    """PostgreSQL: COPY the raw lines into a staging table, slice, check and link them in SQL (``fastload``);
    the lines the fast checks turn away go through the codec."""
    stage = f"recon_up_stage_{run.pk}"
    with connection.cursor() as cursor:
        cursor.execute(fastload.stage_sql(stage))

    def by_codec(line_no: int, raw: bytes) -> None:
        _accept(run, RecordKind.ZM, line_no, ZM_CODEC.parse_line(raw, line_no), loader, errors)

    with opener() as stream:
        fastload.ZMStager(stage, by_codec, mer_id=run.mer_id).load(stream)
    loader.flush()
    fastload.insert_records(stage=stage, run_id=run.pk, merchant_id=run.merchant_id, settle_date=run.settle_date)
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE {stage}")


def _record_totals(run: ReconciliationRun) -> dict[str, _Counts]:
    totals = {RecordKind.ZM: _Counts(), RecordKind.ZME: _Counts()}
    rows = (
        UpstreamRecord.objects.filter(run=run)
        .values("kind")
        .order_by("kind")
        .annotate(
            n=Count("id"),
            amount=Coalesce(Sum("amount"), 0),
            fee=Coalesce(Sum("merchant_fee"), 0),
            settlement=Coalesce(Sum("settle_amount"), 0),
        )
    )
    for row in rows:
        totals[row["kind"]] = _Counts(row["n"], row["amount"], row["fee"], row["settlement"])
    return totals


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
        errors = _Errors()
        try:
            if info.zm is not None:
                if loader.postgres:
                    _load_zm_fast(run, info.zm, loader, errors)
                else:
                    _load_with_codec(run, RecordKind.ZM, info.zm, loader, errors)
            if info.zme is not None:
                _load_with_codec(run, RecordKind.ZME, info.zme, loader, errors)
        except _DamagedMember as exc:
            raise ImportRefused(
                "bad_zip",
                _("The zip file is truncated or damaged and cannot be read (%(detail)s).") % {"detail": exc},
            ) from None
        totals = _record_totals(run)
        detail, adjust = totals[RecordKind.ZM], totals[RecordKind.ZME]
        error_count = errors.failed
        kept = sorted(errors.kept, key=lambda e: e.line_no)
        if detail.count + adjust.count == 0 and error_count:
            first = describe_line_error(kept[0]) if kept else ""
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
        run.line_errors = [{"line": e.line_no, "code": e.code, "message": describe_line_error(e)} for e in kept]
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
