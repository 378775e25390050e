"""The background half of the batch services: validation of an uploaded file.

``batch_validate`` streams the decrypted file through the kind's parser, validates chunks of lines
(the kind's set-based checks, then the order-id guard), writes each chunk's lines in one statement
(COPY on PostgreSQL, bulk INSERT elsewhere) together with the progress counters, and ends in
``validated`` or ``invalid``. On PostgreSQL a chunk's order ids are held with one ``INSERT ... SELECT
FROM unnest(...) ON CONFLICT DO NOTHING RETURNING`` (holders read only for keys not inserted).
Memory stays bounded by one chunk. On PostgreSQL a kind with a ``bulk`` validation (the refund kind)
validates the whole file in the database instead (``_run_bulk``; unless it declines the batch:
``BatchKind.bulk_for``): staged with ``COPY``, checked in sets, written with ``INSERT ... SELECT`` in
the transaction that finishes the batch (a large file by two connections at once, each a half of the
lines: ``side.SideConnection``). A re-run after a crash (same batch still ``validating``) takes over
with a new work token, drops the partial lines and starts over; the superseded run stops at its next
chunk. A valid line's processing chunk is its line number divided by ``BATCH_CHUNK_SIZE``
(``Batch.chunk_size``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
import tempfile
import uuid
from collections.abc import Iterator

from django.conf import settings
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone

from . import storage
from .choices import BatchStatus, FileFormat, LineStatus
from .models import Batch, BatchLine, BatchOrderId
from .registry import FileError, FileRejected, LineError, ParseContext, ParsedLine, get_kind
from .services import _audit, _release_order_ids, batch_transition
from .side import SideConnection, halves
from .uploads import check_xlsx_inflated

logger = logging.getLogger(__name__)


class _Superseded(Exception):
    """The batch left ``validating`` or another run took over: stop quietly."""


def _claim(batch_id: int) -> tuple[Batch, str] | None:
    token = uuid.uuid4().hex
    with transaction.atomic():
        left = batch_transition(
            batch_id=batch_id, old={BatchStatus.UPLOADED}, new=BatchStatus.VALIDATING, work_token=token
        )
        if left is None:
            # A re-run after a crash: take over only a batch still validating.
            if not Batch.objects.filter(pk=batch_id, status=BatchStatus.VALIDATING).update(work_token=token):
                return None
            _release_order_ids(batch_id)
            BatchLine.objects.filter(batch_id=batch_id).delete()
            Batch.objects.filter(pk=batch_id).update(**_ZERO)
    return Batch.objects.select_related("organisation", "merchant").get(pk=batch_id), token


_ZERO = {
    "total_lines": 0,
    "valid_lines": 0,
    "invalid_lines": 0,
    "total_amount": 0,
    "valid_amount": 0,
    "progress_bytes": 0,
    "chunk_count": 0,
    "error_code": "",
    "error_params": {},
}


def batch_validate(*, batch_id: int) -> str | None:
    """Validate batch ``batch_id`` (the body of the ``validate_batch`` task); returns the final status,
    or None when there was nothing to do. A file-level problem (the parser's ``FileError``, too many
    lines, an unreadable file, a parser crash) ends in ``invalid`` with one message and no lines;
    database faults propagate so that the task retries."""
    claimed = _claim(batch_id)
    if claimed is None:
        return None
    batch, token = claimed
    try:
        finished = _run(batch, token)
    except _Superseded:
        return None
    except FileRejected as exc:
        return _fail_file(batch, token, exc.code, exc.params)
    except DatabaseError:
        raise
    except Exception as exc:  # a parser bug or hostile input: fail closed, log no content
        logger.error("batch %s: validation failed with %s", batch_id, type(exc).__name__)
        return _fail_file(batch, token, "file_unreadable", {})
    if finished is not None:
        return finished[0]
    return _finish(batch, token)


@contextlib.contextmanager
def _open_for_parse(batch: Batch) -> Iterator:
    """The decrypted upload: a stream for text; for xlsx a temporary file that passed the
    inflated-size check (openpyxl needs a seekable zip), deleted on exit."""
    if batch.file_format == FileFormat.XLSX:
        with tempfile.TemporaryFile() as tmp:
            with storage.open_plaintext(batch.stored_name) as src:
                shutil.copyfileobj(src, tmp, storage.CHUNK)
            tmp.seek(0)
            check_xlsx_inflated(tmp)
            yield tmp, None
    else:
        raw = storage.DecryptingReader(storage.path_for(batch.stored_name))
        import io

        with io.BufferedReader(raw, buffer_size=storage.CHUNK) as stream:
            yield stream, raw


def _run(batch: Batch, token: str) -> tuple[str] | None:
    """Validate the file; ``(final status,)`` when the run also finished the batch (the bulk path)."""
    kind = get_kind(batch.kind)
    if connection.vendor == "postgresql" and kind.bulk_for(batch) is not None:
        return (_run_bulk(batch, kind, token),)
    ctx = ParseContext(batch=batch, fmt=batch.file_format, max_lines=kind.max_lines)
    chunk_size = settings.BATCH_VALIDATE_CHUNK
    with _open_for_parse(batch) as (stream, counter):
        pending: list = []
        count = 0
        for item in kind.parse(stream, batch.file_format, ctx):
            if isinstance(item, FileError):
                raise FileRejected(item.code, item.params)
            count += 1
            if count > kind.max_lines:
                raise FileRejected("too_many_lines", {"limit": kind.max_lines})
            pending.append(item)
            if len(pending) >= chunk_size:
                _flush(batch, kind, ctx, pending, token, counter)
                pending = []
        if pending:
            _flush(batch, kind, ctx, pending, token, counter)
        if count == 0:
            raise FileRejected("no_lines")


def _flush(batch: Batch, kind, ctx: ParseContext, items: list, token: str, counter) -> None:
    parsed = [i for i in items if isinstance(i, ParsedLine)]
    errors: dict[int, LineError] = {i.line_no: i for i in items if isinstance(i, LineError)}
    if kind.validate_chunk and parsed:
        for err in kind.validate_chunk(batch, parsed, ctx) or ():
            errors[err.line_no] = err
    for line in parsed:
        if line.line_no not in errors and not line.order_id:
            errors[line.line_no] = LineError(line.line_no, "order_id_missing", column="orderId")
    with transaction.atomic():
        # The batch row first: it serialises this chunk against a cancel or a run that took over.
        if not Batch.objects.filter(pk=batch.pk, status=BatchStatus.VALIDATING, work_token=token).update(
            updated_at=timezone.now()
        ):
            raise _Superseded
        _reserve_order_ids(batch, kind, [p for p in parsed if p.line_no not in errors], errors)
        rows, counts = _rows(batch, items, errors, ctx)
        _insert_lines(rows)
        Batch.objects.filter(pk=batch.pk).update(
            total_lines=F("total_lines") + counts["total"],
            valid_lines=F("valid_lines") + counts["valid"],
            invalid_lines=F("invalid_lines") + counts["invalid"],
            total_amount=F("total_amount") + counts["total_amount"],
            valid_amount=F("valid_amount") + counts["valid_amount"],
            progress_bytes=counter.plain_read if counter is not None else F("progress_bytes"),
        )


def _line_merchant(batch: Batch, line: ParsedLine) -> int:
    return line.merchant_id or batch.merchant_id or batch.organisation_id


def _reserve_order_ids(batch: Batch, kind, candidates: list[ParsedLine], errors: dict[int, LineError]) -> None:
    """Hold each candidate's (merchant, order id) for this batch; a line whose order id is held by an
    earlier line (this file or another live batch) becomes invalid, naming the holder."""
    if not candidates:
        return
    family = kind.family
    first: dict[tuple[int, str], int] = {}
    for line in candidates:
        key = (_line_merchant(batch, line), line.order_id)
        if key in first:
            errors[line.line_no] = LineError(
                line.line_no,
                "duplicate_order_id_in_file",
                column="orderId",
                params={"order_id": line.order_id, "line_no": first[key]},
            )
        else:
            first[key] = line.line_no
    if connection.vendor == "postgresql":
        holders = _hold_order_ids_pg(family, batch.pk, first)
    else:
        BatchOrderId.objects.bulk_create(
            [
                BatchOrderId(family=family, merchant_id=m, order_id=o, batch_id=batch.pk, line_no=n)
                for (m, o), n in first.items()
            ],
            ignore_conflicts=True,
            batch_size=1000,
        )
        holders = {
            (m, o): (b, n)
            for m, o, b, n in BatchOrderId.objects.filter(
                family=family, order_id__in={o for _m, o in first}, merchant_id__in={m for m, _o in first}
            ).values_list("merchant_id", "order_id", "batch_id", "line_no")
        }
    for key, line_no in first.items():
        holder = holders.get(key)
        if holder is None or holder == (batch.pk, line_no):
            continue
        if holder[0] == batch.pk:
            errors[line_no] = LineError(
                line_no,
                "duplicate_order_id_in_file",
                column="orderId",
                params={"order_id": key[1], "line_no": holder[1]},
            )
        else:
            errors[line_no] = LineError(
                line_no,
                "duplicate_order_id",
                column="orderId",
                params={"order_id": key[1], "batch_id": holder[0], "line_no": holder[1]},
            )


def _hold_order_ids_pg(family: str, batch_id: int, first: dict[tuple[int, str], int]) -> dict:
    """PostgreSQL: insert the chunk's order ids in one statement (array parameters, conflicts
    skipped, the inserted keys returned), then read the holders of the keys not inserted."""
    table = BatchOrderId._meta.db_table
    merchants, order_ids, line_nos = [], [], []
    for (merchant_id, order_id), line_no in first.items():
        merchants.append(merchant_id)
        order_ids.append(order_id)
        line_nos.append(line_no)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (family, merchant_id, order_id, batch_id, line_no) "
            "SELECT %s, u.m, u.o, %s, u.n FROM unnest(%s::bigint[], %s::text[], %s::int[]) AS u(m, o, n) "
            "ON CONFLICT (family, merchant_id, order_id) DO NOTHING RETURNING merchant_id, order_id",
            [family, batch_id, merchants, order_ids, line_nos],
        )
        inserted = set(cursor.fetchall())
        if len(inserted) == len(first):
            return {}
        merchants, order_ids, line_nos = [], [], []
        for key, line_no in first.items():
            if key not in inserted:
                merchants.append(key[0])
                order_ids.append(key[1])
                line_nos.append(line_no)
        cursor.execute(
            f"SELECT h.merchant_id, h.order_id, h.batch_id, h.line_no FROM {table} h "
            "JOIN unnest(%s::bigint[], %s::text[], %s::int[]) AS u(m, o, n) "
            "ON h.family = %s AND h.merchant_id = u.m AND h.order_id = u.o "
            "WHERE NOT (h.batch_id = %s AND h.line_no = u.n)",
            [merchants, order_ids, line_nos, family, batch_id],
        )
        return {(m, o): (b, n) for m, o, b, n in cursor.fetchall()}


_COLUMNS = (
    "batch_id",
    "line_no",
    "order_id",
    "merchant_id",
    "amount",
    "ref",
    "data",
    "status",
    "chunk_no",
    "error_code",
    "error_column",
    "error_params",
    "result",
    "updated_at",
)


_JSON_INDEXES = tuple(i for i, name in enumerate(_COLUMNS) if name in {"data", "error_params", "result"})


def _rows(batch: Batch, items: list, errors: dict[int, LineError], ctx: ParseContext) -> tuple[list[tuple], dict]:
    now = timezone.now()
    per_chunk = settings.BATCH_CHUNK_SIZE
    counts = {"total": 0, "valid": 0, "invalid": 0, "total_amount": 0, "valid_amount": 0}
    rows = []
    for item in items:
        counts["total"] += 1
        err = errors.get(item.line_no)
        amount = int(item.amount or 0)
        counts["total_amount"] += amount
        merchant_id = getattr(item, "merchant_id", None) or batch.merchant_id
        if err is None:
            counts["valid"] += 1
            counts["valid_amount"] += amount
            rows.append(
                (
                    batch.pk,
                    item.line_no,
                    item.order_id[:64],
                    merchant_id,
                    amount,
                    item.ref[:64],
                    item.data or {},
                    LineStatus.VALID.value,
                    item.line_no // per_chunk,
                    "",
                    "",
                    {},
                    {},
                    now,
                )  # fmt: skip
            )
        else:
            counts["invalid"] += 1
            data = item.data if isinstance(item, ParsedLine) else (err.data or item.data)
            rows.append(
                (
                    batch.pk,
                    item.line_no,
                    (item.order_id or "")[:64],
                    merchant_id,
                    amount,
                    getattr(item, "ref", "")[:64],
                    data or {},
                    LineStatus.INVALID.value,
                    None,
                    err.code[:64],
                    (err.column or "")[:64],
                    err.params or {},
                    {},
                    now,
                )  # fmt: skip
            )
    return rows, counts


def _insert_lines(rows: list[tuple]) -> None:
    if not rows:
        return
    if connection.vendor == "postgresql":
        table = BatchLine._meta.db_table
        sql = f"COPY {table} ({', '.join(_COLUMNS)}) FROM STDIN"
        dumps = json.JSONEncoder(ensure_ascii=False, separators=(", ", ": ")).encode
        with connection.cursor() as cursor, cursor.cursor.copy(sql) as copy:
            for row in rows:
                row = list(row)
                for index in _JSON_INDEXES:
                    row[index] = dumps(row[index]) if row[index] else "{}"
                copy.write_row(row)
        return
    BatchLine.objects.bulk_create([BatchLine(**dict(zip(_COLUMNS, row, strict=True))) for row in rows], batch_size=500)


# --- PostgreSQL: the whole file at once ---------------------------------------------------------------


def _run_bulk(batch: Batch, kind, token: str) -> str:
    """The kind stages the file in its tables (``COPY``, progress as it reads) and checks the lines (a
    transaction of their own); then one transaction writes every line and holds the valid lines'
    order ids with ``INSERT ... SELECT`` over the kind's checked lines, sets the counters and finishes
    the batch (``validated``/``invalid`` with its audit row). A large file is written by two
    connections at once (``_write_bulk``); either way a batch is only ever ``validated`` with all its
    lines, and a run that fails leaves it ``validating`` for the retry, which drops what was written.
    Returns the final status."""
    ctx = ParseContext(batch=batch, fmt=batch.file_format, max_lines=kind.max_lines)
    # Inside a caller's transaction (a test) a second connection would not see the staged tables.
    ctx.side_connections = not connection.in_atomic_block
    with _open_for_parse(batch) as (stream, counter):

        def progress() -> None:
            fields = {"updated_at": timezone.now()}
            if counter is not None:
                fields["progress_bytes"] = counter.plain_read
            if not Batch.objects.filter(pk=batch.pk, status=BatchStatus.VALIDATING, work_token=token).update(**fields):
                raise _Superseded

        try:
            kind.bulk.stage(batch, stream, ctx, progress)
            with transaction.atomic():
                sql, params = kind.bulk.lines(batch, ctx)
            with transaction.atomic():
                # The batch row first: it serialises the write against a cancel or a run that took over.
                if not Batch.objects.filter(pk=batch.pk, status=BatchStatus.VALIDATING, work_token=token).update(
                    updated_at=timezone.now(), progress_bytes=counter.plain_read if counter is not None else 0
                ):
                    raise _Superseded
                _write_bulk(batch, kind, sql, params, split=halves(ctx.line_span) if ctx.side_connections else None)
                status = _finish(batch, token)
                if status is None:
                    raise _Superseded
        finally:
            try:
                kind.bulk.cleanup(ctx)
            except DatabaseError:  # a broken connection: the retry's cleanup drops what is left
                logger.warning("batch %s: dropping the staging tables failed", batch.pk)
    return status


def _write_bulk(batch: Batch, kind, select_sql: str, params: dict, *, split=None) -> None:
    """Insert the kind's lines (a valid line's ``chunk_no`` from its line number) and, from the rows
    inserted, hold the valid lines' order ids, in one statement that also returns the counters. The
    kind's lines already refuse order ids held by other batches; should another batch take one
    meanwhile (a race its read could not see), the statement is run again with ``ON CONFLICT DO
    NOTHING`` and such a line becomes ``duplicate_order_id``, as in the chunked path.

    With ``split`` (``side.halves``) the lines from the middle on are written by a second connection at the same time
    (PostgreSQL writes a connection's rows on one core): it commits only once both halves are in, while
    this transaction still holds the batch row, so a run that took over cannot start its own write
    before this one ends. Should this transaction then fail, the batch stays ``validating`` and the
    retry drops those lines and their order ids, as after a killed worker."""
    args = dict(
        params,
        _batch=batch.pk,
        _valid=LineStatus.VALID.value,
        _invalid=LineStatus.INVALID.value,
        _per_chunk=settings.BATCH_CHUNK_SIZE,
        _now=timezone.now(),
        _family=kind.family,
        _merchant=batch.merchant_id or batch.organisation_id,
    )
    with connection.cursor() as cursor:
        _write_settings(cursor)
    if split is None:
        with connection.cursor() as cursor:
            counters = _insert_bulk(cursor, select_sql, args)
    else:
        first, middle, last = split

        def second_half(cursor) -> tuple:
            _write_settings(cursor)
            return _insert_bulk(cursor, select_sql, dict(args, _from=middle, _to=last))

        side = SideConnection(second_half, hold=True)
        try:
            with connection.cursor() as cursor:
                counters = _insert_bulk(cursor, select_sql, dict(args, _from=first, _to=middle - 1))
        except BaseException:
            side.release(commit=False)
            with contextlib.suppress(Exception):
                side.result()
            raise
        side.release(commit=side.wait_work() is None)
        # The side's commit (or its failure, raised here: this transaction then rolls back too).
        counters = [a + b for a, b in zip(counters, side.result(), strict=True)]
    held, total, valid, total_amount, valid_amount = counters
    if held < valid:
        with connection.cursor() as cursor:
            valid, valid_amount = _bulk_lost_order_ids(cursor, batch, kind)
    Batch.objects.filter(pk=batch.pk).update(
        total_lines=total,
        valid_lines=valid,
        invalid_lines=total - valid,
        total_amount=total_amount,
        valid_amount=valid_amount,
    )


def _write_settings(cursor) -> None:
    """For the write's transaction: its sorts and hashes in memory, and no JIT (whose compile time
    dwarfs these plans)."""
    cursor.execute("SET LOCAL work_mem = '64MB'")
    cursor.execute("SET LOCAL jit = off")


def _insert_bulk(cursor, select_sql: str, args: dict) -> tuple:
    """The write of ``_write_bulk`` (the lines from ``_from`` to ``_to`` when given); the counters."""
    ranged = "_from" in args
    try:
        with transaction.atomic():
            cursor.execute(_bulk_sql(select_sql, on_conflict=False, ranged=ranged), args)
    except IntegrityError:
        cursor.execute(_bulk_sql(select_sql, on_conflict=True, ranged=ranged), args)
    return cursor.fetchone()


def _bulk_sql(select_sql: str, *, on_conflict: bool, ranged: bool = False) -> str:
    lines_table, ids_table = BatchLine._meta.db_table, BatchOrderId._meta.db_table
    # Without ON CONFLICT every valid line's order id is inserted (or the statement fails): no count needed.
    held = (
        " ON CONFLICT (family, merchant_id, order_id) DO NOTHING RETURNING 1) SELECT (SELECT count(*) FROM held), "
        if on_conflict
        else ") SELECT count(*) FILTER (WHERE status = %(_valid)s), "
    )
    return (
        f"WITH ins AS (INSERT INTO {lines_table} ({', '.join(_COLUMNS)}) "
        "SELECT %(_batch)s, s.line_no, left(coalesce(s.order_id, ''), 64), s.merchant_id, coalesce(s.amount, 0), "
        "left(coalesce(s.ref, ''), 64), coalesce(s.data, '{}'::jsonb), "
        "CASE WHEN s.error_code IS NULL THEN %(_valid)s ELSE %(_invalid)s END, "
        "CASE WHEN s.error_code IS NULL THEN s.line_no / %(_per_chunk)s END, "
        "left(coalesce(s.error_code, ''), 64), left(coalesce(s.error_column, ''), 64), "
        f"coalesce(s.error_params, '{{}}'::jsonb), '{{}}'::jsonb, %(_now)s FROM ({select_sql}) s "
        f"{'WHERE s.line_no BETWEEN %(_from)s AND %(_to)s ' if ranged else ''}"
        "RETURNING line_no, order_id, merchant_id, status, amount), "
        f"held AS (INSERT INTO {ids_table} (family, merchant_id, order_id, batch_id, line_no) "
        "SELECT %(_family)s, coalesce(merchant_id, %(_merchant)s), order_id, %(_batch)s, line_no FROM ins "
        f"WHERE status = %(_valid)s{held}count(*), count(*) FILTER (WHERE status = %(_valid)s), "
        "coalesce(sum(amount), 0), coalesce(sum(amount) FILTER (WHERE status = %(_valid)s), 0) FROM ins"
    )


def _bulk_lost_order_ids(cursor, batch: Batch, kind) -> tuple[int, int]:
    """Valid lines whose order id is held by another batch: invalid, naming the holder. Returns the valid
    lines' count and amount."""
    lines_table, ids_table = BatchLine._meta.db_table, BatchOrderId._meta.db_table
    merchant = batch.merchant_id or batch.organisation_id
    cursor.execute(
        f"UPDATE {lines_table} l SET status = %s, chunk_no = NULL, error_code = 'duplicate_order_id', "
        "error_column = 'orderId', error_params = jsonb_build_object('order_id', l.order_id, 'batch_id', h.batch_id, "
        f"'line_no', h.line_no) FROM {ids_table} h WHERE l.batch_id = %s AND l.status = %s AND h.family = %s "
        "AND h.merchant_id = coalesce(l.merchant_id, %s) AND h.order_id = l.order_id AND h.batch_id <> %s",
        [LineStatus.INVALID.value, batch.pk, LineStatus.VALID.value, kind.family, merchant, batch.pk],
    )
    cursor.execute(
        f"SELECT count(*), coalesce(sum(amount), 0) FROM {lines_table} WHERE batch_id = %s AND status = %s",
        [batch.pk, LineStatus.VALID.value],
    )
    return cursor.fetchone()


def _fail_file(batch: Batch, token: str, code: str, params: dict) -> str | None:
    with transaction.atomic():
        if not Batch.objects.filter(pk=batch.pk, status=BatchStatus.VALIDATING, work_token=token).update(**_ZERO):
            return None
        _release_order_ids(batch.pk)
        BatchLine.objects.filter(batch_id=batch.pk).delete()
        left = batch_transition(
            batch_id=batch.pk,
            old={BatchStatus.VALIDATING},
            new=BatchStatus.INVALID,
            guard={"work_token": token},
            error_code=code[:64],
            error_params=params,
            validated_at=timezone.now(),
        )
        if left is None:
            return None
        batch.refresh_from_db()
        _audit("batch.validated", batch, error=code)
    return BatchStatus.INVALID


def _finish(batch: Batch, token: str) -> str | None:
    with transaction.atomic():
        current = Batch.objects.get(pk=batch.pk)
        fields = {"validated_at": timezone.now(), "work_token": ""}
        # The chunk numbers were written with this size (``_rows``, ``_bulk_sql``): see ``Batch.chunk_size``.
        size = settings.BATCH_CHUNK_SIZE
        valid = BatchLine.objects.filter(batch_id=batch.pk, status=LineStatus.VALID)
        last = valid.order_by("-line_no").values_list("line_no", flat=True).first()
        fields.update(chunk_size=size, chunk_count=last // size + 1 if last is not None else 0)
        if current.valid_lines:
            new = BatchStatus.VALIDATED
        else:
            new = BatchStatus.INVALID
            fields.update(error_code="no_valid_lines", error_params={})
        left = batch_transition(
            batch_id=batch.pk, old={BatchStatus.VALIDATING}, new=new, guard={"work_token": token}, **fields
        )
        if left is None:
            return None
        if new == BatchStatus.INVALID:
            _release_order_ids(batch.pk)
        batch.refresh_from_db()
        _audit(
            "batch.validated",
            batch,
            total_lines=batch.total_lines,
            valid_lines=batch.valid_lines,
            invalid_lines=batch.invalid_lines,
            valid_amount=batch.valid_amount,
        )
    return new
