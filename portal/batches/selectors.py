"""Reads of the batch pipeline, always scoped to the user."""

from __future__ import annotations

import csv
from collections.abc import Iterator

from django.db.models import Count
from django.shortcuts import get_object_or_404
from django.utils import translation
from django.utils.translation import gettext as _

from .choices import LineStatus
from .errors import render_message
from .models import Batch, BatchLine
from .registry import all_kinds, get_kind

ERRORS_PAGE_SIZE = 100
SAMPLE_SIZE = 20
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
