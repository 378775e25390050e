"""Settlement-day close (清算日日切): per-merchant and per-acquirer results of a finished day, written once.

Rules enforced here:
* only a finished day closes (T closes at T 23:00 Beijing); the current or a future day is refused;
* closing is idempotent: the same results again return the existing day and change nothing;
* a day is never closed twice with different results: the content hash differs → SettlementCloseError and an
  audit event with outcome ``failure`` (written in its own transaction so the refusal is on record);
* the periodic job catches up every unclosed day up to the last finished one.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Min
from django.utils import timezone
from django.utils.translation import gettext as _

from payments.models import Transaction
from payments.settlement import current_settlement_day
from portal.audit.models import AuditOutcome
from portal.audit.services import audit_record

from ..calendar import next_working_day
from ..ledger import PAYMENT, VOID, FeeBook, fee_return_rule, iter_settle_lines
from ..models import AcquirerSettlement, MerchantSettlement, SettlementDay

TOTAL_FIELDS = (
    "payment_count",
    "payment_amount",
    "void_count",
    "void_amount",
    "refund_count",
    "refund_amount",
    "fee",
    "net",
)


class SettlementCloseError(Exception):
    """A close that must not happen; ``code`` is ``not_finished`` or ``conflict``; the message is for people."""

    NOT_FINISHED = "not_finished"
    CONFLICT = "conflict"

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class DayResult:
    day: date
    merchants: dict[int, dict] = field(default_factory=dict)  # merchant id → totals + acquirer_id
    acquirers: dict[int, dict] = field(default_factory=dict)
    codes: dict[int, str] = field(default_factory=dict)  # organisation id → code (for the canonical hash)
    settle_on: date | None = None

    def content_hash(self) -> str:
        """SHA-256 of the results in canonical JSON (keyed by organisation code, not database id)."""
        payload = {
            "day": self.day.isoformat(),
            "settle_on": self.settle_on.isoformat() if self.settle_on else None,
            "merchants": {self.codes[mid]: {k: v[k] for k in TOTAL_FIELDS} for mid, v in self.merchants.items()},
            "acquirers": {
                self.codes[aid]: {**{k: v[k] for k in TOTAL_FIELDS}, "merchant_count": v["merchant_count"]}
                for aid, v in self.acquirers.items()
            },
        }
        return hashlib.sha256(json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _empty() -> dict:
    return dict.fromkeys(TOTAL_FIELDS, 0)


def settlement_compute_day(*, day: date) -> DayResult:
    """The results of settlement day ``day`` from the ledger (reads only)."""
    result = DayResult(day=day, settle_on=next_working_day(day))
    book = FeeBook()
    for txn, line in iter_settle_lines(day, book=book):
        totals = result.merchants.get(txn.merchant_id)
        if totals is None:
            totals = result.merchants[txn.merchant_id] = {**_empty(), "acquirer_id": txn.merchant.acquirer_id}
            result.codes[txn.merchant_id] = txn.merchant.code
        prefix = "payment" if line.category == PAYMENT else "void" if line.category == VOID else "refund"
        totals[f"{prefix}_count"] += 1
        totals[f"{prefix}_amount"] += line.amount
        totals["fee"] -= line.fee  # the line's fee is signed from the merchant's side
        totals["net"] += line.settlement
    for totals in result.merchants.values():
        acquirer_id = totals["acquirer_id"]
        acq = result.acquirers.setdefault(acquirer_id, {**_empty(), "merchant_count": 0})
        acq["merchant_count"] += 1
        for key in TOTAL_FIELDS:
            acq[key] += totals[key]
    if result.acquirers:
        from portal.accounts.models import Organisation

        result.codes.update(Organisation.objects.filter(pk__in=result.acquirers).values_list("pk", "code"))
    return result


def last_finished_day(now: datetime | None = None) -> date:
    """The latest settlement day whose 23:00 cut-off has passed."""
    return current_settlement_day(now) - timedelta(days=1)


def _refuse_conflict(*, actor, existing: SettlementDay, new_hash: str) -> None:
    with transaction.atomic():
        audit_record(
            action="reconciliation.settlement_close",
            actor=actor,
            actor_repr=None if actor is not None else "system",
            obj=existing,
            outcome=AuditOutcome.FAILURE,
            details={
                "day": existing.day.isoformat(),
                "reason": "different_results",
                "closed_hash": existing.content_hash,
                "new_hash": new_hash,
            },
        )
    raise SettlementCloseError(
        SettlementCloseError.CONFLICT,
        _(
            "Settlement day %(day)s is already closed with different results; it cannot be closed again. "
            "The ledger of that day changed after the close: investigate it as a discrepancy."
        )
        % {"day": existing.day.isoformat()},
    )


def settlement_close_day(*, actor, day: date, now: datetime | None = None) -> SettlementDay:
    """Close settlement day ``day`` (T-1 23:00 → T 23:00 Beijing) and return it.

    Idempotent: closing an already-closed day with the same results returns it unchanged. Raises
    SettlementCloseError for a day not finished yet or for different results. On commit the day's files are
    produced in the background.
    """
    if day > last_finished_day(now):
        raise SettlementCloseError(
            SettlementCloseError.NOT_FINISHED,
            _("Settlement day %(day)s is not finished yet: it closes at 23:00 Beijing time (Asia/Shanghai) that day.")
            % {"day": day.isoformat()},
        )
    result = settlement_compute_day(day=day)
    new_hash = result.content_hash()
    existing = SettlementDay.objects.filter(day=day).first()
    if existing is not None:
        if existing.content_hash == new_hash:
            return existing
        _refuse_conflict(actor=actor, existing=existing, new_hash=new_hash)
    try:
        with transaction.atomic():
            closed = SettlementDay.objects.create(
                day=day,
                closed_at=timezone.now(),
                closed_by=actor if getattr(actor, "pk", None) else None,
                content_hash=new_hash,
                merchant_count=len(result.merchants),
            )
            MerchantSettlement.objects.bulk_create(
                MerchantSettlement(
                    settlement_day=closed,
                    day=day,
                    merchant_id=merchant_id,
                    acquirer_id=totals["acquirer_id"],
                    settle_on=result.settle_on,
                    **{k: totals[k] for k in TOTAL_FIELDS},
                )
                for merchant_id, totals in result.merchants.items()
            )
            AcquirerSettlement.objects.bulk_create(
                AcquirerSettlement(settlement_day=closed, day=day, acquirer_id=acquirer_id, **totals)
                for acquirer_id, totals in result.acquirers.items()
            )
            audit_record(
                action="reconciliation.settlement_close",
                actor=actor,
                actor_repr=None if actor is not None else "system",
                obj=closed,
                details={
                    "day": day.isoformat(),
                    "merchants": len(result.merchants),
                    "hash": new_hash,
                    "fee_return": fee_return_rule(),
                },
            )
            transaction.on_commit(lambda: _enqueue_files(day))
    except IntegrityError:
        # Another worker closed the same day a moment ago: same results → fine; different → refused.
        existing = SettlementDay.objects.get(day=day)
        if existing.content_hash != new_hash:
            _refuse_conflict(actor=actor, existing=existing, new_hash=new_hash)
        return existing
    return closed


def _enqueue_files(day: date) -> None:
    from ..tasks import produce_day_files_task

    produce_day_files_task.delay(day.isoformat())


def _first_candidate_day(last: date) -> date:
    earliest_closed = SettlementDay.objects.order_by("day").values_list("day", flat=True).first()
    earliest_ledger = Transaction.objects.aggregate(first=Min("settle_date"))["first"]
    candidates = [d for d in (earliest_closed, earliest_ledger) if d is not None]
    return min([*candidates, last])


def settlement_close_due(*, actor=None, now: datetime | None = None) -> list[SettlementDay]:
    """Close every unclosed day up to the last finished one (the 23:00 job; catches up missed days).

    It starts at the earliest closed day or ledger day; at most ``RECON_CATCH_UP_MAX_DAYS`` per run.
    """
    last = last_finished_day(now)
    day = _first_candidate_day(last)
    limit = getattr(settings, "RECON_CATCH_UP_MAX_DAYS", 400)
    already = set(SettlementDay.objects.filter(day__gte=day, day__lte=last).values_list("day", flat=True))
    closed: list[SettlementDay] = []
    while day <= last and len(closed) < limit:
        if day not in already:
            closed.append(settlement_close_day(actor=actor, day=day, now=now))
        day += timedelta(days=1)
    return closed
