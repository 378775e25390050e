"""What other apps hold of a payment before the ledger knows it; payments imports none of them.

The ledger only knows refunds that reached it (``Transaction.refunded_amount``). Refunds waiting for
review, approved, being sent or sent, and batch refund lines in flight already *hold* part of the
payment: the refund form refuses that part, so the detail page and the API must not offer it either.
A domain app (refunds) registers, from its ``AppConfig.ready()``::

    register_refund_holds(
        "refunds",
        held=reserved_fen,            # (original_ids) -> {original_id: fen held}, one bounded set of queries
        in_flight=refunds_in_flight,  # (original, user) -> [RefundInFlight, ...]: everything ``held`` counts
    )

``in_flight`` must list every item that ``held`` counts for that payment, so that the page can show
the list and its sum ("in progress") without asking twice. Items the user may not open come without
a ``url`` (and without a ``maker`` from another organisation).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from .money import format_yuan

if TYPE_CHECKING:
    from .models import Transaction


@dataclass(frozen=True)
class RefundInFlight:
    """One refund (or batch refund line) of a payment that holds part of it but is not in the ledger."""

    label: str  # what it is, translated: "Refund", "Void", "Batch refund line 12"
    order_id: str
    amount: int  # fen
    status: str  # translated status
    maker: str  # who asked for it; "" when the user may not know
    created_at: datetime
    url: str = ""  # its page; "" when the user may not open it

    @property
    def amount_yuan(self) -> str:
        return format_yuan(self.amount)


HeldFn = Callable[[list[int]], Mapping[int, int]]
InFlightFn = Callable[["Transaction", Any], Iterable[RefundInFlight]]


@dataclass(frozen=True)
class RefundHolds:
    name: str
    held: HeldFn
    in_flight: InFlightFn | None = None


_REGISTRY: dict[str, RefundHolds] = {}


def register_refund_holds(name: str, *, held: HeldFn, in_flight: InFlightFn | None = None) -> RefundHolds:
    """Register (or replace) what ``name`` holds of payments. See the module docstring."""
    if not name or not callable(held):
        raise ValueError("refund holds need a name and a held callable")
    holds = RefundHolds(name=name, held=held, in_flight=in_flight)
    _REGISTRY[name] = holds
    return holds


def unregister_refund_holds(name: str) -> None:
    """Forget ``name`` (tests)."""
    _REGISTRY.pop(name, None)


def refund_held(original_ids: Iterable[int]) -> dict[int, int]:
    """Fen held per original payment by refunds in flight of every registered app (no query without ids)."""
    ids = sorted(set(original_ids))
    totals: dict[int, int] = {}
    if not ids:
        return totals
    for holds in _REGISTRY.values():
        for pk, fen in holds.held(ids).items():
            totals[pk] = totals.get(pk, 0) + int(fen)
    return totals


def refunds_in_flight(original: Transaction, *, user) -> tuple[int, list[RefundInFlight]]:
    """``(held, items)`` of one payment for ``user``'s page: the fen held by refunds in flight and the
    refunds themselves, oldest first. An app without ``in_flight`` adds its ``held`` without items."""
    held = 0
    items: list[RefundInFlight] = []
    for holds in _REGISTRY.values():
        if holds.in_flight is None:
            held += int(holds.held([original.pk]).get(original.pk, 0))
            continue
        mine = list(holds.in_flight(original, user))
        held += sum(item.amount for item in mine)
        items.extend(mine)
    items.sort(key=lambda item: (item.created_at, item.order_id))
    return held, items
