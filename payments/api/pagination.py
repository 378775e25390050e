"""Keyset paging of the transaction list in the FilterSet's sort order, with the totals of the whole filter."""

from __future__ import annotations

import base64
import binascii

from django.utils.translation import gettext as _
from rest_framework import exceptions, pagination
from rest_framework.response import Response
from rest_framework.utils.urls import replace_query_param

from ..filtersets import SORT_VALUES
from ..selectors import KeysetPage, decode_cursor, keyset_page, transaction_totals

DEFAULT_SORT = "-txn_time"
_NEXT, _PREVIOUS = "n", "p"
_CURSOR_MAX_LENGTH = 400

TOTALS_SCHEMA = {
    "type": "object",
    "description": "Of the whole filtered set, not only this page. Amounts are integers in fen.",
    "required": ["count", "amount", "success_count", "success_amount"],
    "properties": {
        "count": {"type": "integer", "example": 61},
        "amount": {"type": "integer", "description": "fen", "example": 1277000},
        "success_count": {"type": "integer", "example": 60},
        "success_amount": {"type": "integer", "description": "fen", "example": 1272000},
    },
}


def encode_api_cursor(direction: str, sort: str, key: str) -> str:
    """An opaque ``cursor`` carrying the direction, the sort order and the keyset position."""
    return base64.urlsafe_b64encode(f"{direction}|{sort}|{key}".encode()).decode().rstrip("=")


def decode_api_cursor(token: str) -> tuple[str, str, str] | None:
    """``(direction, sort, key)`` of a cursor made by ``encode_api_cursor``, or None if it is not one."""
    if len(token) > _CURSOR_MAX_LENGTH:
        return None
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        direction, sort, key = raw.split("|", 2)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return None
    if direction not in (_NEXT, _PREVIOUS) or sort not in SORT_VALUES or decode_cursor(key, sort) is None:
        return None
    return direction, sort, key


class TransactionKeysetPagination(pagination.BasePagination):
    """Keyset (seek) paging on (sort column, id) in the order the FilterSet's ``sort`` asks for.

    The ``cursor`` of the ``next`` / ``previous`` links encodes the sort it was made for; a cursor
    used with another sort, or one that was not made here, is a 400. Every page carries the totals
    of the whole filter, like the totals line of the pages.
    """

    page_size = 50
    max_page_size = 500
    cursor_query_param = "cursor"
    page_size_query_param = "page_size"

    def paginate_queryset(self, queryset, request, view=None):
        filterset = getattr(view, "filterset", None)
        sort = filterset.sort_order if filterset is not None else DEFAULT_SORT
        size = self._page_size(request)
        direction, key = self._cursor(request, sort)
        self.base_url = request.build_absolute_uri()
        self.sort = sort
        self.totals = transaction_totals(queryset)
        self.page: KeysetPage = keyset_page(
            queryset,
            sort=sort,
            after=key if direction == _NEXT else None,
            before=key if direction == _PREVIOUS else None,
            size=size,
        )
        return self.page.rows

    def _page_size(self, request) -> int:
        raw = (request.query_params.get(self.page_size_query_param) or "").strip()
        if not raw:
            return self.page_size
        try:
            size = int(raw)
        except ValueError:
            size = 0
        if size < 1:
            raise exceptions.ValidationError(
                {
                    self.page_size_query_param: [
                        _("Enter a whole number of rows per page from 1 to %(max)s.") % {"max": self.max_page_size}
                    ]
                }
            )
        return min(size, self.max_page_size)

    def _cursor(self, request, sort: str) -> tuple[str | None, str | None]:
        token = request.query_params.get(self.cursor_query_param) or ""
        if not token:
            return None, None
        decoded = decode_api_cursor(token)
        if decoded is None:
            raise exceptions.ValidationError(
                {
                    self.cursor_query_param: [
                        _("This cursor is not valid: follow the next or previous link of a list answer.")
                    ]
                }
            )
        direction, cursor_sort, key = decoded
        if cursor_sort != sort:
            raise exceptions.ValidationError(
                {
                    self.cursor_query_param: [
                        _("This cursor belongs to another sort order: start again from the first page.")
                    ]
                }
            )
        return direction, key

    def _link(self, direction: str, key: str | None) -> str | None:
        if not key:
            return None
        return replace_query_param(self.base_url, self.cursor_query_param, encode_api_cursor(direction, self.sort, key))

    def get_next_link(self) -> str | None:
        return self._link(_NEXT, self.page.next_cursor)

    def get_previous_link(self) -> str | None:
        return self._link(_PREVIOUS, self.page.prev_cursor)

    def get_paginated_response(self, data):
        return Response(
            {
                "next": self.get_next_link(),
                "previous": self.get_previous_link(),
                "totals": self.totals,
                "results": data,
            }
        )

    def get_paginated_response_schema(self, schema):
        return {
            "type": "object",
            "required": ["next", "previous", "totals", "results"],
            "properties": {
                "next": {
                    "type": "string",
                    "nullable": True,
                    "format": "uri",
                    "example": f"http://api.example.org/api/v1/transactions/?sort=-amount&{self.cursor_query_param}=...",
                },
                "previous": {"type": "string", "nullable": True, "format": "uri"},
                "totals": TOTALS_SCHEMA,
                "results": schema,
            },
        }

    def get_schema_operation_parameters(self, view):
        return [
            {
                "name": self.cursor_query_param,
                "required": False,
                "in": "query",
                "description": (
                    "Opaque position from the `next` or `previous` link of a list answer. It carries the sort "
                    "order it was made for: use it with the same `sort` (or follow the links as they are)."
                ),
                "schema": {"type": "string"},
            },
            {
                "name": self.page_size_query_param,
                "required": False,
                "in": "query",
                "description": f"Rows per page, 1 to {self.max_page_size} (default {self.page_size}; more is "
                f"treated as {self.max_page_size}).",
                "schema": {"type": "integer", "minimum": 1, "default": self.page_size},
            },
        ]
