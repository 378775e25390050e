"""Cut-off edges and the T+1 working day (chinese_calendar, with the override table winning); fee arithmetic."""

from datetime import date

import pytest

from payments.settlement import settlement_date_for
from reconciliation.calendar import is_working_day, next_working_day
from reconciliation.fees import Rate, payment_fee, refund_fee_return
from reconciliation.models import MerchantSettlement, WorkingDayOverride
from reconciliation.services import settlement_close_day

from .conftest import bj


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (bj(2026, 3, 10, 22, 59, 59), date(2026, 3, 10)),
        (bj(2026, 3, 10, 23, 0, 0), date(2026, 3, 11)),
        (bj(2026, 3, 11, 0, 0, 0), date(2026, 3, 11)),
        (bj(2026, 3, 31, 23, 0, 0), date(2026, 4, 1)),  # month end
        (bj(2025, 12, 31, 22, 59, 59), date(2025, 12, 31)),  # year end
        (bj(2025, 12, 31, 23, 0, 0), date(2026, 1, 1)),
    ],
)
def test_cutoff_edges(moment, expected):
    assert settlement_date_for(moment) == expected


@pytest.mark.parametrize(
    ("day", "settle_on"),
    [
        (date(2026, 3, 10), date(2026, 3, 11)),  # Tuesday → Wednesday
        (date(2026, 3, 13), date(2026, 3, 16)),  # Friday → Monday
        (date(2026, 1, 31), date(2026, 2, 2)),  # month end on a Saturday
        (date(2025, 12, 31), date(2026, 1, 4)),  # year end: 1–3 Jan holiday, Sunday 4 Jan an adjusted working day
        (date(2026, 9, 30), date(2026, 10, 8)),  # National Day holiday 1–7 October
        (date(2026, 2, 13), date(2026, 2, 14)),  # Saturday 14 Feb is an adjusted working day
    ],
)
def test_next_working_day_follows_the_chinese_calendar(db, day, settle_on):
    assert next_working_day(day) == settle_on


def test_override_table_wins(db):
    # given: the package says Sunday 4 Jan 2026 is a working day and Saturday 7 Mar is not
    WorkingDayOverride.objects.create(day=date(2026, 1, 4), is_working=False, note="bank closed")
    WorkingDayOverride.objects.create(day=date(2026, 3, 7), is_working=True)

    # then
    assert next_working_day(date(2025, 12, 31)) == date(2026, 1, 5)
    assert next_working_day(date(2026, 3, 6)) == date(2026, 3, 7)
    assert is_working_day(date(2026, 1, 4)) is False


def test_years_beyond_the_package_fall_back_to_weekdays(db):
    assert is_working_day(date(2099, 1, 5)) is True  # a Monday
    assert next_working_day(date(2099, 1, 9)) == date(2099, 1, 12)  # Friday → Monday


def test_closed_day_carries_the_holiday_settlement_date(merchant_a, make_txn):
    # given: a payment late on 30 September (before the cut-off)
    make_txn(merchant_a, txn_time=bj(2026, 9, 30, 22, 59, 59))

    # when
    settlement_close_day(actor=None, day=date(2026, 9, 30), now=bj(2026, 10, 1, 9))

    # then: funds move after the National Day holiday
    assert MerchantSettlement.objects.get().settle_on == date(2026, 10, 8)


@pytest.mark.parametrize(
    ("amount", "rate", "fee"),
    [
        (10_000, Rate(38), 38),
        (1_250, Rate(38), 5),  # 4.75 → 5 (half up)
        (1_184, Rate(38), 4),  # 4.4992 → 4
        (1_250, Rate(38, min_fee=10), 10),  # minimum
        (1_000_000, Rate(38, max_fee=2_000), 2_000),  # maximum
        (5, Rate(38, min_fee=10), 5),  # never more than the amount
        (10_000, Rate(0), 0),
    ],
)
def test_payment_fee_rounds_half_up_and_applies_bounds(amount, rate, fee):
    assert payment_fee(amount, rate) == fee


@pytest.mark.parametrize(
    ("rule", "refund", "returned"),
    [("none", 3_000, 0), ("proportional", 3_000, 18), ("proportional", 1_250, 8), ("proportional", 20_000, 120)],
)
def test_refund_fee_return_rule(rule, refund, returned):
    assert refund_fee_return(refund_amount=refund, original_amount=20_000, original_fee=120, rule=rule) == returned
