"""Batch kinds: what a domain app plugs into the pipeline.

A domain app (refunds, later collection and payout) registers its kind from its AppConfig.ready()::

    register_batch_kind(BatchKind(code="refund", label=_("Batch refund"), parse=..., validate_chunk=...,
                                  process_line=..., recover_line=..., write_result=...,
                                  approval_kind="refund.batch"))

The pipeline calls, in order:

* ``parse(stream, fmt, context)`` once per validation run, in the worker: ``stream`` is a binary,
  seekable file of the decrypted upload (``fmt`` is ``"text"`` or ``"xlsx"``; the xlsx has passed the
  zip-bomb checks; ``portal.batches.readers`` has streaming text and xlsx readers). It yields, in file
  order, ``ParsedLine`` (a candidate line), ``LineError`` (a line that cannot be parsed) or
  ``FileError`` (the whole file fails; may come last, e.g. header totals). It must stream: never
  hold the file's lines in memory.
* ``validate_chunk(batch, lines, context)`` with up to ``BATCH_VALIDATE_CHUNK`` parsed lines at a
  time, in file order; returns ``LineError``s for the bad ones (set-based queries welcome; it may set
  ``merchant_id`` and ``ref`` on the lines). Earlier chunks are already stored as ``BatchLine`` rows,
  and ``context.state`` is a dict kept for the whole run. The pipeline itself then refuses order ids
  already held by another line (this file or another batch) of the same ``order_id_family``.
* ``process_line(batch, line)`` in a chunk worker, once the line is claimed (``valid`` → ``processing``).
  It sends the line with ``line.order_id`` (stable, so the gateway recognises a repeat) and returns a
  ``LineResult``; an exception is an infrastructure fault: the line stays ``processing`` and the task
  retries, going through ``recover_line``.
* ``recover_line(batch, line)`` for a line found ``processing`` on a re-run (killed worker): ask the
  gateway by ``line.order_id`` and return the real outcome, or None when unknown (the line becomes
  ``sent``, outcome to be recorded later with ``services.batch_line_record_outcome``). It must never
  blindly send again.
* ``write_result(batch, fmt, lines, out)`` once at the end: write the result file (回盘) for ``lines``
  (every line of the batch in line order, invalid ones included) to the binary stream ``out``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import IO, Any

from portal.accounts.roles import Perm


@dataclass(slots=True)
class ParsedLine:
    """A line the parser could read. ``amount`` in fen; ``data`` the parsed columns (JSON-able,
    never a full card number); ``merchant_id`` when the line names its merchant; ``ref`` an
    indexed key for the kind's set-based checks."""

    line_no: int
    order_id: str = ""
    amount: int = 0
    data: dict = field(default_factory=dict)
    merchant_id: int | None = None
    ref: str = ""


@dataclass(slots=True)
class LineError:
    """A bad line: its number, the column at fault, a message code (the kind's ``messages`` or the
    pipeline's ``errors.MESSAGES``) and its ``%(name)s`` parameters."""

    line_no: int
    code: str
    column: str = ""
    params: dict = field(default_factory=dict)
    order_id: str = ""
    amount: int = 0
    data: dict = field(default_factory=dict)


@dataclass(slots=True)
class FileError:
    """The whole file fails with one message (code + params)."""

    code: str
    params: dict = field(default_factory=dict)


class FileRejected(Exception):
    """Raised by a parser (or the pipeline) to fail the whole file."""

    def __init__(self, code: str, params: dict | None = None):
        super().__init__(code)
        self.code = code
        self.params = params or {}


@dataclass(slots=True)
class LineResult:
    """The outcome of sending one line. ``status``: ``succeeded``, ``failed`` or ``sent`` (accepted,
    final outcome later). ``result``: respCode, respMsg, queryId, settleDate, traceNo, traceTime…"""

    status: str
    result: dict = field(default_factory=dict)


@dataclass
class ParseContext:
    """What a parser and validator know about the run: the batch, the line cap, and a scratch dict."""

    batch: Any
    fmt: str
    max_lines: int
    state: dict = field(default_factory=dict)
    # Set by a bulk validation's ``lines``: the first and last line number its SELECT gives.
    line_span: tuple[int, int] | None = None
    # True when a bulk validation may work on a ``side.SideConnection`` too (not inside a caller's
    # transaction, whose uncommitted tables another connection would not see).
    side_connections: bool = False


Parser = Callable[[IO[bytes], str, ParseContext], Iterator[ParsedLine | LineError | FileError]]
Validator = Callable[[Any, list[ParsedLine], ParseContext], Iterable[LineError]]


@dataclass(frozen=True)
class BulkValidation:
    """A kind's set-based validation of a whole file on PostgreSQL (the pipeline uses it there
    instead of ``parse`` + ``validate_chunk``; it must give the same lines, statuses and messages).

    * ``stage(batch, stream, context, progress)`` loads the file into the kind's staging tables
      (``COPY``), calling ``progress()`` now and then (it raises when the run was superseded); a
      file-level problem raises ``FileRejected``. It runs outside the write transaction.
    * ``lines(batch, context)`` → ``(sql, params)``: a ``SELECT`` (``%(name)s`` parameters) of every line of
      the file with the columns ``line_no, order_id, merchant_id, amount, ref, data, error_code,
      error_column, error_params`` (``error_code`` NULL for a valid line), the kind's own checks
      done, the order-id guard included (in-file duplicates, ids held by other batches); it sets
      ``context.line_span``. It runs in a transaction of its own, committed before the write: the
      pipeline may run the ``SELECT`` for a range of line numbers on a second connection (so it must
      name the tables it reads in a way any connection resolves).
    * ``cleanup(context)`` drops what ``stage`` created (also after a failure).
    * ``applies_to(batch)`` (optional): False when this batch is not for the bulk path (the pipeline then
      validates it with ``parse`` + ``validate_chunk`` on PostgreSQL too); None: every batch."""

    stage: Callable[[Any, IO[bytes], ParseContext, Callable[[], None]], None]
    lines: Callable[[Any, ParseContext], tuple[str, dict]]
    cleanup: Callable[[ParseContext], None]
    applies_to: Callable[[Any], bool] | None = None


@dataclass(frozen=True)
class BatchKind:
    """One kind of batch file. ``code`` is the URL and database key (``refund``); ``label`` is
    shown; ``approval_kind`` names the approvable registered for it (``refund.batch``), empty for
    a kind that needs no review; ``order_id_family`` groups kinds sharing an order-id space
    (defaults to ``code``); ``messages`` maps the kind's error codes to translatable texts with
    ``%(name)s`` placeholders; ``columns`` maps column keys to translatable labels (error report);
    ``sample_columns`` are the ``data`` keys shown in the sample of valid lines; ``view_perm`` and
    ``upload_perm`` let a kind ask for its own permissions."""

    code: str
    label: Any
    parse: Parser
    process_line: Callable[[Any, Any], LineResult]
    write_result: Callable[[Any, str, Iterator[Any], IO[bytes]], None]
    validate_chunk: Validator | None = None
    recover_line: Callable[[Any, Any], LineResult | None] | None = None
    formats: frozenset[str] = frozenset({"text", "xlsx"})
    approval_kind: str = ""
    order_id_family: str = ""
    max_lines: int = 1_000_000
    view_perm: str = Perm.BATCHES_VIEW
    upload_perm: str = Perm.BATCHES_UPLOAD
    messages: Mapping[str, Any] = field(default_factory=dict)
    columns: Mapping[str, Any] = field(default_factory=dict)
    sample_columns: tuple[str, ...] = ()
    # When True an acquirer must name the merchant at upload (single-merchant batches only).
    requires_merchant: bool = False
    description: Any = ""
    # PostgreSQL: the whole file validated in the database (see ``BulkValidation``).
    bulk: BulkValidation | None = None

    @property
    def family(self) -> str:
        return self.order_id_family or self.code

    def bulk_for(self, batch) -> BulkValidation | None:
        """The set-based validation to use for ``batch`` on PostgreSQL, or None: the kind has none, or
        declines it for this batch (``BulkValidation.applies_to``)."""
        if self.bulk is None or (self.bulk.applies_to is not None and not self.bulk.applies_to(batch)):
            return None
        return self.bulk

    def column_label(self, column: str) -> str:
        return str(self.columns.get(column, column))


_KINDS: dict[str, BatchKind] = {}


class UnknownKind(LookupError):
    pass


def register_batch_kind(kind: BatchKind) -> BatchKind:
    """Add ``kind`` (replacing one of the same code: tests and reloads) and register its approvable."""
    _KINDS[kind.code] = kind
    if kind.approval_kind:
        from .approval import register_kind_approvable

        register_kind_approvable(kind)
    return kind


def unregister_batch_kind(code: str) -> None:
    """Remove a kind (tests)."""
    _KINDS.pop(code, None)


def get_kind(code: str) -> BatchKind:
    try:
        return _KINDS[code]
    except KeyError:
        raise UnknownKind(code) from None


def all_kinds() -> list[BatchKind]:
    return list(_KINDS.values())
