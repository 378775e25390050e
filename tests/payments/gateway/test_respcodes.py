import pytest

from payments.gateway.acp.respcodes import RESP_CODES, RespClass, classify, is_success, lookup

S, P, R, F = RespClass.SUCCESS, RespClass.PENDING_QUERY, RespClass.RETRY_LATER, RespClass.FAILURE

DOCUMENTED = {
    "00": S, "A6": S,
    "01": F, "02": R, "03": P, "04": P, "05": P, "06": R,
    "10": F, "11": F, "12": F, "13": F, "14": F, "15": F,
    "30": F, "31": F, "32": F, "33": F, "34": F, "35": F, "36": F, "37": F, "38": F, "39": F,
    "40": F, "41": F, "42": F, "43": F, "44": F, "45": F, "46": F, "47": F, "48": F,
    "60": F, "61": F, "63": F, "64": F, "65": F, "66": F, "67": F, "71": F, "73": F, "81": F, "83": F,
    "98": R, "99": F,
}  # fmt: skip


@pytest.mark.parametrize(("code", "expected"), sorted(DOCUMENTED.items()))
def test_documented_codes_are_classified(code, expected):
    assert classify(code) is expected


def test_table_holds_exactly_the_documented_codes():
    assert set(RESP_CODES) == set(DOCUMENTED)


@pytest.mark.parametrize("code", ["ZZ", "", None, "7", "2010002"])
def test_unknown_codes_are_final_failures(code):
    assert classify(code) is F
    assert lookup(code).classification is F


@pytest.mark.parametrize(("code", "expected"), [("01", P), ("12", P), ("34", P), ("60", P), ("64", F), ("00", S)])
def test_payout_keeps_querying_on_its_extra_codes(code, expected):
    assert classify(code, txn_type="12") is expected
    assert classify(code, txn_type="04") is DOCUMENTED[code]


def test_lookup_gives_the_network_text_and_a_label():
    entry = lookup("45")
    assert entry.zh == "原交易已被成功退货或已被成功撤销"
    assert str(entry.label) == "Original transaction already refunded or voided"


def test_is_success_and_lowercase():
    assert is_success("00") and is_success("a6") and not is_success("05")
