"""Deterministic outcomes of the sandbox acquirer: the single source for tests and the in-portal help.

Transactions that carry a card (collection 11, payout 12) are decided by the card number, then by the amount;
refunds (04) and voids (31) first pass the network's rules, then the amount rule. The synchronous answer of a
back-office request is ``00`` (accepted) unless stated; the result arrives by notification and by query.

Test cards (Luhn-valid; any BIN works, the last four digits decide):

=====================  ==============  ==========================================================
card                   last four       outcome
=====================  ==============  ==========================================================
6222020000000090001    0001            success (``00``)
6222020000000080002    0002            fails with ``64`` 余额不足 (insufficient balance)
6222020000000070003    0003            pending (``05`` on query) for ``SANDBOX_PENDING_SECONDS``, then success
6222020000000060004    0004            fails with ``63`` 卡状态不正确 (card status not valid)
6217000000000030001    0001            success (debit card, other BIN)
6258070000080001       0001            success (credit card, 16 digits)
any other valid card                   success
not Luhn-valid                         refused at once: synchronous ``61`` 卡号无效
=====================  ==============  ==========================================================

Amounts (fen), after the card rules:

* ending in ``99`` (e.g. 10099 = ¥100.99): fails with ``60`` 交易失败详询发卡行;
* exactly ``1`` (¥0.01): the synchronous answer is ``03`` 交易通讯超时 (query it); the transaction is pending for
  ``SANDBOX_PENDING_SECONDS`` and then succeeds.

Refund and void rules (formats.md §9), answered synchronously:

* ``12`` 重复交易: the merchant already used this ``orderId``;
* ``35`` 原交易不存在或状态不正确: ``origQryId`` names no successful payment of this merchant;
* ``45`` 原交易已被成功退货或已被成功撤销: nothing left to refund, or a void of a payment already (partly) refunded;
* ``36`` 与原交易信息不符: a void not for the full amount, or a refund above what is still refundable;
* ``39`` 交易不在受理时间范围内: a void after the payment's settlement day closed (23:00 Beijing time), or a refund
  more than 330 days after the payment.

Notifications go to the request's ``backUrl`` with the network's schedule: attempts at 0, 1, 2 and 4 minutes
(multiplied by ``SANDBOX_NOTIFY_TIME_SCALE``, 1/60 in the embedded default: 0, 1, 2, 4 seconds); HTTP 200 or 302
ends them.
"""

from __future__ import annotations

from dataclasses import dataclass

from payments.cards import luhn_valid

STATUS_SUCCESS = "success"
STATUS_FAILED = "failed"
STATUS_PENDING = "pending"

#: Delays in minutes before each notification attempt (gateway demo: "每次的间隔时间为0,1,2,4分钟").
NOTIFY_SCHEDULE_MINUTES: tuple[float, ...] = (0, 1, 2, 4)
#: Refunds are accepted within 11 months of the payment (formats.md §9).
REFUND_WINDOW_DAYS = 330

TEST_CARDS: dict[str, str] = {
    "success": "6222020000000090001",
    "insufficient_balance": "6222020000000080002",
    "pending": "6222020000000070003",
    "card_status": "6222020000000060004",
    "success_debit_ccb": "6217000000000030001",
    "success_credit": "6258070000080001",
}

RESP_MESSAGES: dict[str, str] = {
    "00": "成功[0000000]",
    "03": "交易通讯超时，请发起查询交易",
    "05": "交易已受理，请稍后查询交易结果",
    "10": "报文格式错误",
    "11": "验证签名失败",
    "12": "重复交易",
    "13": "报文交易要素缺失",
    "14": "批量文件格式错误",
    "15": "报文交易要素不支持",
    "34": "查无此交易",
    "35": "原交易不存在或状态不正确",
    "36": "与原交易信息不符",
    "39": "交易不在受理时间范围内",
    "45": "原交易已被成功退货或已被成功撤销",
    "60": "交易失败详询发卡行",
    "61": "卡号无效",
    "63": "卡状态不正确",
    "64": "余额不足",
    "98": "文件不存在",
}


def resp_msg(code: str) -> str:
    return RESP_MESSAGES.get(code, "交易失败")


@dataclass(frozen=True)
class Outcome:
    """What the sandbox does with a request: ``sync_code`` is the synchronous answer; ``status`` / ``resp_code`` the
    transaction's result (``pending`` resolves to success after ``SANDBOX_PENDING_SECONDS``)."""

    sync_code: str
    status: str
    resp_code: str

    @property
    def refused(self) -> bool:
        """Refused synchronously: no transaction is created."""
        return self.sync_code not in ("00", "03")


ACCEPTED = Outcome("00", STATUS_SUCCESS, "00")


def refused(code: str) -> Outcome:
    return Outcome(code, STATUS_FAILED, code)


def decide(*, amount: int, card_number: str | None = None) -> Outcome:
    """The outcome of a money-moving request of ``amount`` fen (on ``card_number`` when it carries one)."""
    if card_number is not None:
        if not card_number.isdigit() or not 13 <= len(card_number) <= 19 or not luhn_valid(card_number):
            return refused("61")
        suffix = card_number[-4:]
        if suffix == "0002":
            return Outcome("00", STATUS_FAILED, "64")
        if suffix == "0003":
            return Outcome("00", STATUS_PENDING, "05")
        if suffix == "0004":
            return Outcome("00", STATUS_FAILED, "63")
    if amount % 100 == 99:
        return Outcome("00", STATUS_FAILED, "60")
    if amount == 1:
        return Outcome("03", STATUS_PENDING, "05")
    return ACCEPTED
