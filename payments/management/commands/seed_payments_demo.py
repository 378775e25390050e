"""Demo merchant profiles for the two demo merchants (idempotent; run after ``seed_demo``)."""

from django.core.management.base import BaseCommand

from payments.models import MerchantProfile
from payments.services import merchant_profile_save
from portal.accounts.models import Organisation

# Accounts are given masked: the portal never holds a settlement account number in full.
PROFILES = {
    "898310000000001": {
        "settlement_account_masked": "6217***********0012",
        "settlement_bank": "中国银行上海分行",
        "products": ["000201", "000301", "000501"],
        "limit_per_txn": 5_000_000,
        "limit_daily": 100_000_000,
        "limit_monthly": 2_000_000_000,
    },
    "898310000000002": {
        "settlement_account_masked": "6228***********0034",
        "settlement_bank": "中国农业银行北京分行",
        "products": ["000201"],
        "refund_window_days": 180,
        "limit_per_txn": 1_000_000,
        "limit_daily": None,
        "limit_monthly": None,
    },
}


class Command(BaseCommand):
    help = "Create the demo merchants' profiles (settlement account, products, limits); safe to run again."

    def handle(self, *args, **options):
        created = 0
        for code, values in PROFILES.items():
            merchant = Organisation.objects.filter(code=code, kind="merchant").first()
            if merchant is None or MerchantProfile.objects.filter(merchant=merchant).exists():
                continue
            merchant_profile_save(actor=None, profile=MerchantProfile(merchant=merchant, **values), changed=["seed"])
            created += 1
        self.stdout.write(f"merchant profiles ready ({created} created)")
