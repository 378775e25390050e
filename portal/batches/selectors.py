"""Reads of the batch pipeline, always scoped to the user."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass

from django.db.models import Count, F, Q, QuerySet
from django.shortcuts import get_object_or_404
from django.utils import translation
from django.utils.translation import gettext as _

from portal.accounts.models import Organisation, OrganisationKind
from portal.accounts.roles import Perm

from .choices import RELEASED, BatchStatus, LineStatus
from .errors import render_message
from .models import Batch, BatchLine, BatchOrderId
from .registry import UnknownKind, all_kinds, get_kind

ERRORS_PAGE_SIZE = 100
SAMPLE_SIZE = 20
LINES_PAGE_SIZE = 100
ORDER_ID_MAX = 64
_DANGEROUS_START = ("=", "+", "-", "@", "\t", "\r", "\n")


def kinds_visible_to(user) -> list:
    return [k for k in all_kinds() if user.has_portal_perm(k.view_perm)]


def batches_visible_to(user, kind: str | None = None):
    codes = [k.code for k in kinds_visible_to(user)]
    if kind:
        codes = [c for c in codes if c == kind]
    return (
        Batch.objects.visible_to(user)
        .of_kinds(codes)
        .select_related("uploaded_by", "organisation", "merchant")
        .order_by("-created_at", "-id")
    )


def batch_get(user, pk) -> Batch:
    """One batch ``user`` may see (404 otherwise, whatever the reason)."""
    return get_object_or_404(
        Batch.objects.visible_to(user).select_related("uploaded_by", "organisation", "merchant"), pk=pk
    )


def batch_invalid_lines(batch: Batch):
    return BatchLine.objects.filter(batch_id=batch.pk, status=LineStatus.INVALID).order_by("line_no")


class _Elided(dict):
    """Message parameters of a group of lines: every one shown as an ellipsis."""

    def __missing__(self, key):
        return "…"

    def __bool__(self) -> bool:  # render_message falls back to {} for empty (falsy) params
        return True


def error_code_message(code: str, kind=None) -> str:
    """The message of a line error ``code`` in the active language, for many lines at once: the kind's
    message (else the pipeline's) with each line's own values (``%(value)s``, …) shown as "…"."""
    return render_message(code, _Elided(), kind)


def batch_error_summary(batch: Batch) -> list[dict]:
    """How many invalid lines the batch has per (error code, column), most frequent first, each with the
    code's message in the active language and the column's label: ``[{code, column, column_label, count,
    message}]``.

    One GROUP BY over the batch's invalid lines, which the partial (batch, status) index on the lines
    past ``valid`` finds (its predicate ``status <> 'valid'`` is implied by ``status = 'invalid'``); no
    query at all for a batch without invalid lines."""
    if not batch.invalid_lines:
        return []
    kind = _kind_or_none(batch.kind)
    groups = (
        BatchLine.objects.filter(batch_id=batch.pk, status=LineStatus.INVALID)
        .values("error_code", "error_column")
        .annotate(count=Count("*"))
        .order_by("-count", "error_code", "error_column")
    )
    return [
        {
            "code": group["error_code"],
            "column": group["error_column"],
            "column_label": kind.column_label(group["error_column"])
            if kind and group["error_column"]
            else group["error_column"],
            "count": group["count"],
            "message": error_code_message(group["error_code"], kind),
        }
        for group in groups
    ]


def batch_sample_lines(batch: Batch, size: int = SAMPLE_SIZE):
    return list(
        BatchLine.objects.filter(batch_id=batch.pk)
        .exclude(status=LineStatus.INVALID)
        .exclude(status=LineStatus.PENDING)
        .order_by("line_no")[:size]
    )


def batch_status_history(batch: Batch):
    return list(batch.status_changes.select_related("actor").order_by("at", "id"))


def line_message(batch: Batch, line: BatchLine) -> str:
    kind = _kind_or_none(batch.kind)
    return render_message(line.error_code, line.error_params, kind)


def batch_message(batch: Batch) -> str:
    return render_message(batch.error_code, batch.error_params, _kind_or_none(batch.kind))


def _kind_or_none(code: str):
    try:
        return get_kind(code)
    except LookupError:
        return None


def _cell(value) -> str:
    text = "" if value is None else str(value)
    if text and (text.startswith(_DANGEROUS_START) or ord(text[0]) < 0x20):
        return "'" + text
    return text


class _Echo:
    def write(self, value: str) -> str:
        return value


def batch_error_report(batch: Batch, *, lang: str | None = None) -> Iterator[bytes]:
    """The invalid lines as CSV (UTF-8 with a BOM for Excel): line number, column, code, message in
    ``lang`` (default: the active language), order id. Streams; cells neutralised against formulas."""
    kind = _kind_or_none(batch.kind)
    writer = csv.writer(_Echo())
    with translation.override(lang or translation.get_language()):
        yield "\ufeff".encode()
        yield writer.writerow([_("Line"), _("Column"), _("Error code"), _("Message"), _("Order ID")]).encode()
        for line in batch_invalid_lines(batch).iterator(chunk_size=2000):
            column = kind.column_label(line.error_column) if kind and line.error_column else line.error_column
            yield writer.writerow(
                [
                    line.line_no,
                    _cell(column),
                    _cell(line.error_code),
                    _cell(render_message(line.error_code, line.error_params, kind)),
                    _cell(line.order_id),
                ]
            ).encode()


# --- the lines of a batch, by status ----------------------------------------------------------------

# The status filters of the lines list, in pipeline order, each named by a line status (its label is
# shown). ``valid`` also takes ``pending`` (a line not yet checked): both are lines waiting to be sent.
LINE_FILTERS: dict[str, tuple[str, ...]] = {
    LineStatus.VALID: (LineStatus.VALID, LineStatus.PENDING),
    LineStatus.PROCESSING: (LineStatus.PROCESSING,),
    LineStatus.SENT: (LineStatus.SENT,),
    LineStatus.SUCCEEDED: (LineStatus.SUCCEEDED,),
    LineStatus.FAILED: (LineStatus.FAILED,),
    LineStatus.INVALID: (LineStatus.INVALID,),
}
# What a line's ``result`` may say that is shown (``registry.LineResult``); anything else stays internal.
RESULT_KEYS = ("respCode", "respMsg", "queryId", "settleDate", "traceNo", "traceTime")
_LINE_FIELDS = (
    "id",
    "batch_id",
    "line_no",
    "order_id",
    "amount",
    "status",
    "error_code",
    "error_column",
    "error_params",
    "result",
    "updated_at",
)


def line_filter_choices() -> list[tuple[str, str]]:
    """``[(value, label)]`` of the status filters (labels in the active language)."""
    return [(value, str(LineStatus(value).label)) for value in LINE_FILTERS]


def batch_lines(
    batch: Batch, *, status: str = "", order_id: str = "", by_status_index: bool = False
) -> QuerySet[BatchLine]:
    """The lines of ``batch`` in line order, optionally of one status filter (``LINE_FILTERS``; an unknown
    value raises ``ValueError``) and with one exact order id. The caller has checked that the user may see
    the batch; the lines are reached through it only.

    Read forward from a cursor on the unique (batch, line_no) index. With ``by_status_index`` (for a status
    past ``valid`` that few of the batch's lines hold) the order is ``line_no + 0``, which that index cannot
    give: the planner then takes the lines from the partial (batch, status) index (its predicate
    ``status <> 'valid'`` is implied by ``status = x``) and sorts them, instead of walking the whole batch
    for a handful of matches (its statistics are the table's, not the batch's). Use the alias
    ``position`` (not ``line_no``) for a cursor on such a queryset, so that it matches the order."""
    lines = BatchLine.objects.filter(batch_id=batch.pk)
    if status:
        if status not in LINE_FILTERS:
            raise ValueError(f"unknown line status filter: {status}")
        statuses = LINE_FILTERS[status]
        lines = lines.filter(status=statuses[0]) if len(statuses) == 1 else lines.filter(status__in=statuses)
    if order_id:
        lines = lines.filter(_order_id_match(batch, order_id))
    lines = lines.only(*_LINE_FIELDS)
    if by_status_index:
        if not _in_status_index(status):
            raise ValueError(f"not a status of the partial index: {status!r}")
        return lines.alias(position=F("line_no") + 0).order_by("position")
    return lines.order_by("line_no")


def _order_id_match(batch: Batch, order_id: str) -> Q:
    """The condition of ``batch``'s lines with ``order_id``, read through an index.

    The lines table has no index on the order id (a million-line file would pay for it at validation).
    While a validated batch keeps its order ids held (not ``RELEASED``), each line that is not ``invalid``
    holds its own in ``BatchOrderId``, whose unique (family, merchant, order id) index finds it (for an
    acquirer's file for several merchants: one probe per merchant of the acquirer), and the ``invalid`` lines
    are few and in the partial (batch, status) index: so the line is found without walking the batch. A
    batch still being validated, or released, is searched line by line."""
    plain = Q(order_id=order_id)
    if batch.status in RELEASED or batch.status in (BatchStatus.UPLOADED, BatchStatus.VALIDATING):
        return plain
    if batch.merchant_id:
        merchants = [batch.merchant_id]
    elif batch.organisation.kind == OrganisationKind.ACQUIRER:
        merchants = Organisation.objects.filter(acquirer_id=batch.organisation_id).values("pk")
    else:
        return plain
    try:
        family = get_kind(batch.kind).family
    except UnknownKind:
        return plain
    # Read first, so that the condition is two index conditions (``line_no = ANY`` or ``status``) that the
    # planner ORs over both indexes; an ``IN (subquery)`` under an OR would be a filter on every line.
    held = list(
        BatchOrderId.objects.filter(
            family=family, merchant_id__in=merchants, order_id=order_id, batch_id=batch.pk
        ).values_list("line_no", flat=True)
    )
    return plain & (Q(line_no__in=held) | Q(status=LineStatus.INVALID))


def _in_status_index(status: str) -> bool:
    """Whether the lines of status filter ``status`` are all in the partial (batch, status) index."""
    return bool(status) and LineStatus.VALID not in LINE_FILTERS.get(status, (LineStatus.VALID,))


@dataclass(frozen=True)
class LinesPage:
    """One page of a keyset-paged lines list: ``lines`` in line order, and the cursors either side
    (``after`` for the next page, ``before`` for the previous one; None at either end)."""

    lines: list[BatchLine]
    next_after: int | None
    previous_before: int | None


def batch_lines_page(
    batch: Batch,
    *,
    status: str = "",
    order_id: str = "",
    after: int | None = None,
    before: int | None = None,
    size: int = LINES_PAGE_SIZE,
    counts: dict[str, int] | None = None,
) -> LinesPage:
    """A page of ``batch_lines`` by keyset on ``line_no``: the ``size`` lines after line ``after`` (from the
    start when None), or, given ``before``, the ``size`` lines before it. One query of ``size + 1`` rows, plus
    one ``EXISTS`` for the other direction: no OFFSET, no COUNT, so the millionth line costs what the first
    does.

    ``counts`` (``batch_line_counts``, when the caller has them) saves the query of a status the batch has
    no line of, and chooses how a status past ``valid`` is read: through its partial index and a sort when
    that sort is cheaper than walking the batch in line order to the next ``size`` matches (``n`` matching
    lines of ``total``, spread evenly: ``n`` rows against ``size * total / n``)."""
    if counts is not None and counts.get(status, 0) == 0:
        return LinesPage([], None, None)
    sparse = counts is not None and _in_status_index(status) and counts[status] ** 2 < (size + 1) * counts[""]
    lines = batch_lines(batch, status=status, order_id=order_id, by_status_index=sparse)
    key = "position" if sparse else "line_no"
    if before is not None:
        rows = list(lines.filter(**{f"{key}__lt": before}).reverse()[: size + 1])
        more_before = len(rows) > size
        rows = rows[:size][::-1]
        if not rows:
            return LinesPage([], None, None)
        next_after = rows[-1].line_no if lines.filter(**{f"{key}__gt": rows[-1].line_no}).exists() else None
        return LinesPage(rows, next_after, rows[0].line_no if more_before else None)
    forward = lines.filter(**{f"{key}__gt": after}) if after is not None else lines
    rows = list(forward[: size + 1])
    more_after = len(rows) > size
    rows = rows[:size]
    next_after = rows[-1].line_no if rows and more_after else None
    previous_before = None
    if after is not None and rows and lines.filter(**{f"{key}__lt": rows[0].line_no}).exists():
        previous_before = rows[0].line_no
    return LinesPage(rows, next_after, previous_before)


def batch_line_counts(batch: Batch) -> dict[str, int]:
    """How many lines of ``batch`` each status filter holds, plus ``""`` for all of them: one GROUP BY
    (none for a batch without lines). For the batch and lines pages, not for the progress fragment polled
    every 2 seconds.

    Once validated, a batch's lines are written (``total_lines`` of them) and only change status: the GROUP BY
    then reads the lines past ``valid`` only, from the partial (batch, status) index, and the valid ones are
    the rest; a freshly validated million-line batch costs its few invalid lines, not a million rows."""
    counts = dict.fromkeys(["", *LINE_FILTERS], 0)
    if not batch.total_lines:
        return counts
    settled = batch.status not in (BatchStatus.UPLOADED, BatchStatus.VALIDATING)
    lines = BatchLine.objects.filter(batch_id=batch.pk)
    if settled:
        lines = lines.exclude(status=LineStatus.VALID)
    by_status = {row["status"]: row["n"] for row in lines.values("status").annotate(n=Count("*")).order_by()}
    if settled:
        by_status[LineStatus.VALID] = max(0, batch.total_lines - sum(by_status.values()))
    for value, statuses in LINE_FILTERS.items():
        counts[value] = sum(by_status.get(s, 0) for s in statuses)
    counts[""] = sum(by_status.values())
    return counts


def line_result(line: BatchLine) -> dict[str, str]:
    """The shown part of a processed line's ``result`` (gateway answer: respCode, respMsg, queryId…)."""
    result = line.result if isinstance(line.result, dict) else {}
    return {key: str(result[key]) for key in RESULT_KEYS if result.get(key) not in (None, "")}


def line_outcome(batch: Batch, line: BatchLine, kind=None) -> str:
    """One text for a line's message column: the kind's error message for an invalid line (in the active
    language), else the gateway's answer (``respCode respMsg``), else empty."""
    if line.error_code:
        return render_message(line.error_code, line.error_params, kind or _kind_or_none(batch.kind))
    result = line_result(line)
    return " ".join(part for part in (result.get("respCode", ""), result.get("respMsg", "")) if part)


# --- the original file --------------------------------------------------------------------------------


def original_download_allowed(user, kind) -> bool:
    """Whether ``user`` may download a batch's uploaded file (the batch being visible to them): the kind's
    view permission and its upload permission (maker) or the batch review permission (checker). A viewer
    alone (an auditor) sees the lines, never the raw file, which may hold more than they do."""
    if not user.has_portal_perm(kind.view_perm):
        return False
    return user.has_portal_perm(kind.upload_perm) or user.has_portal_perm(Perm.BATCHES_APPROVE)
