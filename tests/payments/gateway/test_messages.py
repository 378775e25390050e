import base64
from datetime import UTC, datetime

import pytest

from payments.gateway.acp import messages as m
from payments.gateway.acp.errors import ACPRequestError

CTX = m.MerchantContext(mer_id="777290058110048")
WHEN = datetime(2025, 1, 1, 4, 0, 0, tzinfo=UTC)  # 12:00 in Beijing


def test_refund_fields():
    assert m.build_refund(
        CTX,
        order_id="RF20250101001",
        txn_time=WHEN,
        txn_amt=150,
        orig_qry_id="201501011200000000001",
        back_url="http://b/",
    ) == {
        "version": "5.1.0",
        "encoding": "UTF-8",
        "signMethod": "01",
        "txnType": "04",
        "txnSubType": "00",
        "bizType": "000201",
        "accessType": "0",
        "merId": "777290058110048",
        "txnTime": "20250101120000",
        "channelType": "07",
        "orderId": "RF20250101001",
        "txnAmt": "150",
        "currencyCode": "156",
        "origQryId": "201501011200000000001",
        "backUrl": "http://b/",
    }


def test_void_query_batch_and_file_transfer_types():
    void = m.build_void(CTX, order_id="VD20250101001", txn_time=WHEN, txn_amt=1, orig_qry_id="1", back_url="u")
    assert (void["txnType"], void["txnSubType"]) == ("31", "00")
    query = m.build_query(CTX, order_id="VD20250101001", txn_time="20250101120000")
    assert (query["txnType"], query["txnSubType"], query["orderId"]) == ("00", "00", "VD20250101001")
    batch = m.build_batch(
        CTX, txn_sub_type="03", batch_no="0001", txn_time=WHEN, total_qty=10, total_amt=1000, file_content="eJw="
    )
    assert (batch["txnType"], batch["txnSubType"], batch["bizType"], batch["batchNo"]) == ("21", "03", "000401", "0001")
    assert m.build_batch_query(CTX, txn_sub_type="02", batch_no="0002", txn_time=WHEN)["txnType"] == "22"
    transfer = m.build_file_transfer(CTX, settle_date="0119", txn_time=WHEN)
    assert (transfer["txnType"], transfer["txnSubType"], transfer["bizType"], transfer["fileType"]) == (
        "76",
        "01",
        "000000",
        "00",
    )


def test_collection_and_payout_customer_info():
    payout = m.build_payout(
        CTX,
        order_id="DF20250101001",
        txn_time=WHEN,
        txn_amt=100,
        acc_no="6221558812340000",
        back_url="u",
        customer_info={"certifTp": "01", "customerNm": "互联网"},
    )
    assert (payout["txnType"], payout["bizType"]) == ("12", "000401")
    assert base64.b64decode(payout["customerInfo"]).decode() == "{certifTp=01&customerNm=互联网}"
    collection = m.build_collection(CTX, order_id="DK20250101001", txn_time=WHEN, txn_amt=1, acc_no="6", back_url="u")
    assert (collection["txnType"], collection["bizType"], "customerInfo" in collection) == ("11", "000501", False)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"order_id": "short"},
        {"order_id": "has-dash-0001"},
        {"txn_amt": 0},
        {"txn_amt": 1.5},
        {"txn_amt": True},
        {"txn_time": datetime(2025, 1, 1)},
        {"txn_time": "2025010112"},
        {"orig_qry_id": ""},
    ],
)
def test_refund_validation(kwargs):
    base = dict(order_id="RF20250101001", txn_time=WHEN, txn_amt=1, orig_qry_id="1", back_url="u")
    with pytest.raises(ACPRequestError):
        m.build_refund(CTX, **(base | kwargs))


def test_context_and_other_validation():
    with pytest.raises(ACPRequestError):
        m.MerchantContext(mer_id="123")
    with pytest.raises(ACPRequestError):
        m.MerchantContext(mer_id="777290058110048", version="5.0.1")
    with pytest.raises(ACPRequestError):
        m.build_file_transfer(CTX, settle_date="1301", txn_time=WHEN)
    with pytest.raises(ACPRequestError):
        m.build_batch(CTX, txn_sub_type="04", batch_no="0001", txn_time=WHEN, total_qty=1, total_amt=1, file_content="")
    with pytest.raises(ACPRequestError):
        m.build_batch_query(CTX, txn_sub_type="03", batch_no="0000", txn_time=WHEN)


def test_txn_time_round_trip():
    assert m.parse_txn_time(m.format_txn_time(WHEN)) == WHEN
