"""The log filter masks Luhn-valid card numbers and the values of secret-looking keys."""

import logging

from hypothesis import assume, given
from hypothesis import strategies as st

from portal.core.logging import RedactSecretsFilter, redact


def _luhn_complete(body: str) -> str:
    """``body`` plus the check digit that makes it Luhn-valid."""
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return body + str((10 - total % 10) % 10)


pans = st.integers(min_value=13, max_value=19).flatmap(
    lambda n: st.text(alphabet="0123456789", min_size=n - 1, max_size=n - 1).map(_luhn_complete)
)
separators = st.sampled_from([" ", ":", "=", "|", "卡号", ",", "\n", "("])
# No digits (they would lengthen the run) and no letters that could spell a secret key name.
words = st.text(alphabet="商户交易退款 abcxyzABCXYZ.-_/", max_size=20)


@given(pan=pans, before=words, after=words, sep=separators)
def test_a_luhn_valid_pan_never_survives(pan, before, after, sep):
    line = f"{before}{sep}{pan}{sep}{after}"
    cleaned = redact(line)
    assert pan not in cleaned
    # BIN and last four stay for support; the middle is masked
    assert pan[:6] + "*" * (len(pan) - 10) + pan[-4:] in cleaned


@given(
    key=st.sampled_from(["password", "PASSWORD", "secret", "otp_token", "token", "signature", "passwd"]),
    sep=st.sampled_from(["=", ": ", "='", '": "']),
    value=st.text(
        alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_+/", min_size=6, max_size=40
    ),
)
def test_secret_values_are_blanked(key, sep, value):
    # A value found elsewhere in the line ("passwo" in "password") cannot tell whether it was blanked.
    assume(value not in f"login attempt {key}{sep} from 10.0.0.1")
    line = f"login attempt {key}{sep}{value} from 10.0.0.1"
    cleaned = redact(line)
    assert value not in cleaned
    assert "[redacted]" in cleaned
    assert cleaned.endswith(" from 10.0.0.1")


def test_the_filter_rewrites_the_record_including_its_arguments():
    # given a record whose card number arrives through the %-arguments
    record = logging.LogRecord(
        "portal", logging.INFO, __file__, 1, "card %s password=%s", ("6222021234567890128", "hunter2hunter2"), None
    )
    # when the filter runs
    kept = RedactSecretsFilter().filter(record)
    # then the record is kept, rendered and masked
    assert kept is True
    assert record.getMessage() == "card 622202*********0128 password=[redacted]"


def test_ordinary_numbers_are_left_alone():
    line = "order 20260101 amount 12345 fen on 2026-01-01 12:00:00, phone 13800000001"
    assert redact(line) == line
