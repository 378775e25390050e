from datetime import UTC, date, datetime, timedelta

import pytest

from payments.settlement import current_settlement_day, settlement_date_for, settlement_window

from .conftest import bj


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        (bj(2026, 3, 10, 22, 59, 59), date(2026, 3, 10)),
        (bj(2026, 3, 10, 23, 0, 0), date(2026, 3, 11)),
        (bj(2026, 3, 10, 23, 0, 1), date(2026, 3, 11)),
        (bj(2026, 3, 10, 23, 59, 59), date(2026, 3, 11)),
        (bj(2026, 3, 11, 0, 0, 0), date(2026, 3, 11)),
        (bj(2026, 3, 31, 23, 0, 0), date(2026, 4, 1)),
        (bj(2026, 2, 28, 23, 30, 0), date(2026, 3, 1)),
        (bj(2028, 2, 28, 23, 30, 0), date(2028, 2, 29)),
        (bj(2026, 12, 31, 22, 59, 59), date(2026, 12, 31)),
        (bj(2026, 12, 31, 23, 0, 0), date(2027, 1, 1)),
        (bj(2027, 1, 1, 0, 0, 0), date(2027, 1, 1)),
    ],
)
def test_settlement_date_around_the_cutoff(when, expected):
    assert settlement_date_for(when) == expected


def test_settlement_date_from_utc_input():
    # 15:00 UTC is 23:00 in Beijing: the next settlement day.
    assert settlement_date_for(datetime(2026, 12, 31, 15, 0, tzinfo=UTC)) == date(2027, 1, 1)
    assert settlement_date_for(datetime(2026, 12, 31, 14, 59, 59, tzinfo=UTC)) == date(2026, 12, 31)


def test_naive_datetime_is_refused():
    with pytest.raises(ValueError):
        settlement_date_for(datetime(2026, 1, 1, 12, 0))


def test_window_is_previous_23h_to_23h_in_utc():
    start, end = settlement_window(date(2027, 1, 1))
    assert start == datetime(2026, 12, 31, 15, 0, tzinfo=UTC)
    assert end == datetime(2027, 1, 1, 15, 0, tzinfo=UTC)


def test_window_and_date_agree_on_the_edges():
    day = date(2026, 3, 1)
    start, end = settlement_window(day)
    assert settlement_date_for(start) == day
    assert settlement_date_for(end) == date(2026, 3, 2)
    assert settlement_date_for(end - timedelta(microseconds=1)) == day
    assert settlement_date_for(start - timedelta(microseconds=1)) == date(2026, 2, 28)


def test_current_settlement_day_uses_now():
    assert current_settlement_day(bj(2026, 5, 1, 23, 0, 0)) == date(2026, 5, 2)
    assert current_settlement_day(bj(2026, 5, 1, 8, 0, 0)) == date(2026, 5, 1)
