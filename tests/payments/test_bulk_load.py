import pytest
from django.core.management import call_command

from payments.cards import luhn_valid
from payments.models import Transaction

pytestmark = pytest.mark.django_db


def test_bulk_load_writes_realistic_rows_without_card_numbers(merchant_a):
    call_command("ledger_bulk_load", rows=500, merchants=3, days=10, chunk=200, cards=50)
    assert Transaction.objects.count() == 500
    assert Transaction.objects.values("merchant").distinct().count() == 3
    for txn in Transaction.objects.all():
        assert txn.card_masked.count("*") >= 6 and len(txn.card_hash) == 64
        assert txn.refunded_amount <= txn.amount
        assert txn.acquirer_id == txn.merchant.acquirer_id
    refunds = Transaction.objects.filter(txn_type__in=["04", "31"])
    assert refunds.exists() and all(r.orig_id for r in refunds)


def test_bulk_load_never_stores_a_luhn_valid_number(merchant_a):
    import re

    call_command("ledger_bulk_load", rows=200, merchants=1, days=3, cards=20)
    digits = re.compile(r"(?<!\d)\d{13,19}(?!\d)")
    for row in Transaction.objects.values_list(*[f.attname for f in Transaction._meta.concrete_fields]):
        for value in row:
            for run in digits.findall(str(value)):
                assert not luhn_valid(run), run
