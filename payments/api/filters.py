"""The ledger FilterSet behind the REST API: today's settlement day or history, as on the pages."""

from __future__ import annotations

from django.utils.translation import gettext as _
from django_filters import utils
from django_filters.rest_framework import DjangoFilterBackend
from rest_framework import exceptions

TODAY_PARAM = "today"
# Dates only mean something in history mode; with today=true they would be silently ignored.
HISTORY_ONLY_PARAMS = ("date_from", "date_to", "settle_date")
_TRUE, _FALSE = {"true", "1"}, {"false", "0"}


def list_mode(params) -> str:
    """``"today"`` for ``today=true`` (the current settlement day, like the today page), else ``"history"``.

    Anything but true/false/1/0 is refused, and so are dates next to ``today=true``.
    """
    raw = (params.get(TODAY_PARAM) or "").strip().lower()
    if not raw or raw in _FALSE:
        return "history"
    if raw not in _TRUE:
        raise exceptions.ValidationError({TODAY_PARAM: [_("Enter true or false.")]})
    if any(params.get(name) for name in HISTORY_ONLY_PARAMS):
        raise exceptions.ValidationError(
            {TODAY_PARAM: [_("today=true cannot be combined with date_from, date_to or settle_date.")]}
        )
    return "today"


class TransactionFilterBackend(DjangoFilterBackend):
    """``DjangoFilterBackend`` with the list mode, keeping the bound FilterSet on the view
    (``view.filterset``) so that the pagination pages in the FilterSet's sort order. It filters lists
    only: a transaction's detail is found by its id whatever its date."""

    def get_filterset_kwargs(self, request, queryset, view):
        kwargs = super().get_filterset_kwargs(request, queryset, view)
        kwargs["mode"] = list_mode(request.query_params)
        return kwargs

    def filter_queryset(self, request, queryset, view):
        if getattr(view, "action", None) == "retrieve":
            # A detail is found by its id: the list's filters (and their default seven days) do not apply.
            return queryset
        filterset = self.get_filterset(request, queryset, view)
        if filterset is None:
            return queryset
        if not filterset.is_valid():
            raise utils.translate_validation(filterset.errors)
        view.filterset = filterset
        return filterset.qs
