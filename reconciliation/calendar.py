"""The settlement working-day calendar: ``chinese_calendar`` (statutory holidays and adjusted working weekends),
overridden day by day by ``WorkingDayOverride`` rows; beyond the package's years, Monday to Friday."""

from __future__ import annotations

from datetime import date, timedelta

import chinese_calendar


def _package_says_working(day: date) -> bool:
    try:
        return bool(chinese_calendar.is_workday(day))
    except NotImplementedError:  # a year the package has no data for yet
        return day.weekday() < 5


def is_working_day(day: date, overrides: dict[date, bool] | None = None) -> bool:
    """Whether funds can move on ``day``. ``overrides`` (day → is_working) is read from the table when not given."""
    if overrides is None:
        from .models import WorkingDayOverride

        row = WorkingDayOverride.objects.filter(day=day).values_list("is_working", flat=True).first()
        if row is not None:
            return row
        return _package_says_working(day)
    if day in overrides:
        return overrides[day]
    return _package_says_working(day)


def next_working_day(day: date) -> date:
    """The first working day strictly after ``day`` (T+1 of settlement day T)."""
    from .models import WorkingDayOverride

    overrides = dict(
        WorkingDayOverride.objects.filter(day__gt=day, day__lte=day + timedelta(days=60)).values_list(
            "day", "is_working"
        )
    )
    candidate = day + timedelta(days=1)
    for _ in range(366):
        if is_working_day(candidate, overrides):
            return candidate
        candidate += timedelta(days=1)
    raise ValueError("no working day within a year")  # pragma: no cover - a calendar of only holidays
