"""29 February in a transmission time: resolved to a leap year near the settlement date, else a line error."""

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from payments.gateway.acp.reconfiles import ReconFileError, ZMERecord, ZMRecord
from payments.gateway.acp.reconfiles._fixed import resolve_time

BJ = ZoneInfo("Asia/Shanghai")


@pytest.mark.parametrize("settle", [date(2026, 3, 1), date(2026, 7, 15), date(2022, 2, 28), date(2022, 12, 31)])
def test_0229_with_no_leap_year_within_one_year_is_a_recon_file_error(settle):
    # given a settlement date whose previous, own and next years are all common years
    assert not any(y % 4 == 0 for y in (settle.year - 1, settle.year, settle.year + 1))

    # when 29 February is resolved / then the codec reports an invalid date (no bare ValueError from min())
    with pytest.raises(ReconFileError, match=r"'0229120000' is not a date near " + settle.isoformat()):
        resolve_time("0229120000", settle)


def test_0229_of_a_record_is_reported_through_transmitted_at():
    zm = ZMRecord(trans_time="0229120000", orig_trans_time="0229235959")
    zme = ZMERecord(trans_time="0229000000")

    with pytest.raises(ReconFileError):
        zm.transmitted_at(date(2026, 3, 1))
    with pytest.raises(ReconFileError):
        zm.orig_transmitted_at(date(2026, 3, 1))
    with pytest.raises(ReconFileError):
        zme.transmitted_at(date(2026, 3, 1))


def test_0229_next_to_a_leap_year_still_resolves():
    assert resolve_time("0229120000", date(2024, 8, 1)) == datetime(2024, 2, 29, 12, 0, 0, tzinfo=BJ)
    assert resolve_time("0229120000", date(2027, 12, 30)) == datetime(2028, 2, 29, 12, 0, 0, tzinfo=BJ)


def test_0229_more_than_half_a_year_from_the_leap_day_is_an_error():
    with pytest.raises(ReconFileError, match="is not a date near 2025-01-02"):
        resolve_time("0229120000", date(2025, 1, 2))
