"""The one place that knows the settlement day (清算日).

Settlement day T runs from T-1 23:00 to T 23:00 Beijing time (Asia/Shanghai), half open:
a transaction at exactly 23:00:00 belongs to the next day. Everything else in the portal asks
these functions instead of doing its own arithmetic.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.utils import timezone

CUTOFF = time(23, 0)


def business_tz() -> ZoneInfo:
    return ZoneInfo(settings.BUSINESS_TIME_ZONE)


def settlement_date_for(txn_time: datetime) -> date:
    """The settlement day of a transaction made at the aware datetime ``txn_time``."""
    if timezone.is_naive(txn_time):
        raise ValueError("txn_time must be an aware datetime")
    local = txn_time.astimezone(business_tz())
    if local.time() >= CUTOFF:
        return local.date() + timedelta(days=1)
    return local.date()


def current_settlement_day(now: datetime | None = None) -> date:
    """The settlement day open at ``now`` (default: the current time)."""
    return settlement_date_for(now or timezone.now())


def settlement_window(day: date) -> tuple[datetime, datetime]:
    """``(start, end)`` in UTC of settlement day ``day``: start inclusive, end exclusive."""
    tz = business_tz()
    start = datetime.combine(day - timedelta(days=1), CUTOFF, tzinfo=tz)
    end = datetime.combine(day, CUTOFF, tzinfo=tz)
    return start.astimezone(UTC), end.astimezone(UTC)


def business_day_bounds(first: date, last: date) -> tuple[datetime, datetime]:
    """``(start, end)`` in UTC covering the Beijing calendar days ``first``..``last`` inclusive."""
    tz = business_tz()
    start = datetime.combine(first, time(0, 0), tzinfo=tz)
    end = datetime.combine(last + timedelta(days=1), time(0, 0), tzinfo=tz)
    return start.astimezone(UTC), end.astimezone(UTC)


def business_today(now: datetime | None = None) -> date:
    """Today's calendar date in Beijing."""
    return (now or timezone.now()).astimezone(business_tz()).date()
