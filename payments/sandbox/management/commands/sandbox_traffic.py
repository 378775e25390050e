"""Generate cardholder payments in the sandbox and deliver them to the portal as signed notifications.

``python manage.py sandbox_traffic --days 30 --per-day 20 [--merchant MERID ...] [--seed S]``

Each payment is a consume (txnType 01, bizType 000201) recorded on the network side and POSTed as a signed
notification to ``ACP_BACK_URL`` over HTTP, so it reaches the ledger through the real receiver. Everything derives
from the seed (order ids, queryIds, times, amounts, cards), so running it again sends nothing twice.
"""

from __future__ import annotations

import math
import random
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

import httpx
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from payments.cards import card_hash, generate_test_pan, mask_pan
from payments.gateway.acp.codec import encode_request
from payments.gateway.acp.messages import BEIJING
from payments.sandbox import services
from payments.sandbox.models import SandboxStatus, SandboxTransaction
from payments.settlement import business_today, settlement_date_for
from portal.accounts.models import Organisation, OrganisationKind

# (BIN, length, payCardType, weight): debit cards of ICBC, CCB, ABC; credit cards of ICBC and CMB.
BINS = (
    ("622202", 19, "01", 30),
    ("621700", 19, "01", 25),
    ("622848", 19, "01", 15),
    ("625807", 16, "02", 15),
    ("622588", 16, "02", 15),
)
FAILURES = (("64", 6), ("65", 2), ("61", 1), ("63", 1))
FAILURE_SHARE = 0.05
MOBILE_SHARE = 0.65


@dataclass
class Payment:
    txn: SandboxTransaction
    pan: str


def _amount(rng: random.Random) -> int:
    """Fen, log-normal around ¥68 (small shop and online payments), rounded the way prices are."""
    yuan = min(max(math.exp(rng.gauss(math.log(68), 1.1)), 1.0), 20000.0)
    style = rng.random()
    if style < 0.4:
        fen = round(yuan) * 100
    elif style < 0.55:
        fen = round(yuan / 10) * 1000 or 1000
    else:
        fen = round(yuan * 100)
    if fen % 100 == 99:  # 99 fen is the sandbox's failure amount
        fen += 1
    return max(fen, 100)


def _card(rng: random.Random) -> tuple[str, str]:
    bins = [item for item in BINS]
    prefix, length, card_type, _weight = rng.choices(bins, weights=[item[3] for item in bins])[0]
    while True:
        pan = generate_test_pan(rng, prefix=prefix, length=length)
        if pan[-4:] not in ("0001", "0002", "0003", "0004"):
            return pan, card_type


def _times(rng: random.Random, day: date, count: int, now: datetime) -> list[datetime]:
    start = datetime.combine(day, time(0, 0), tzinfo=BEIJING)
    span = 86400 if day < now.astimezone(BEIJING).date() else max(60, int((now - start).total_seconds()) - 1)
    # Busier at lunch and in the evening: a mix of a uniform day and two peaks.
    seconds = []
    for _ in range(count):
        pick = rng.random()
        if pick < 0.35:
            value = rng.gauss(12.5 * 3600, 3600)
        elif pick < 0.7:
            value = rng.gauss(19.5 * 3600, 5400)
        else:
            value = rng.uniform(0, 86400)
        seconds.append(int(min(max(value, 0), 86399)) % span)
    return [start + timedelta(seconds=value) for value in sorted(seconds)]


class Command(BaseCommand):
    help = "Generate sandbox cardholder payments and deliver them to the portal as signed ACP notifications."

    def add_arguments(self, parser):
        parser.add_argument("--days", type=int, default=30, help="Days back from today (today included).")
        parser.add_argument("--per-day", type=int, default=20, help="Payments per merchant and day.")
        parser.add_argument("--merchant", action="append", default=[], help="Merchant number (repeatable).")
        parser.add_argument("--seed", default="1", help="Seed: the same seed gives the same payments.")
        parser.add_argument("--back-url", default="", help="Notification URL (default: ACP_BACK_URL).")
        parser.add_argument("--concurrency", type=int, default=4, help="Notifications in flight at once.")

    def handle(self, *args, days, per_day, merchant, seed, back_url, concurrency, **options):
        if not seed.isascii() or not seed.isalnum() or len(seed) > 12:
            raise CommandError("--seed must be 1 to 12 letters or digits (it becomes part of the order ids).")
        if not settings.SANDBOX_ENABLED:
            raise CommandError("The sandbox is off (SANDBOX_ENABLED, or PORTAL_ENV=production).")
        if days < 1 or per_day < 1 or concurrency < 1:
            raise CommandError("--days, --per-day and --concurrency must be positive.")
        merchants = Organisation.objects.filter(kind=OrganisationKind.MERCHANT).order_by("code")
        if merchant:
            merchants = merchants.filter(code__in=merchant)
            missing = set(merchant) - set(merchants.values_list("code", flat=True))
            if missing:
                raise CommandError(f"Unknown merchant number(s): {', '.join(sorted(missing))}")
        back_url = back_url or settings.ACP_BACK_URL
        now = timezone.now()
        today = business_today(now)
        payments: list[Payment] = []
        created = 0
        for org in merchants:
            for offset in range(days - 1, -1, -1):
                day = today - timedelta(days=offset)
                made, new = self._day(org.code, day, per_day, seed, now, back_url)
                payments.extend(made)
                created += new
        pending = [payment for payment in payments if payment.txn.delivered_at is None]
        delivered, failed = self._deliver(pending, concurrency)
        self.stdout.write(
            f"sandbox_traffic: {len(payments)} payments for {merchants.count()} merchant(s) over {days} day(s) "
            f"({created} new); notifications delivered {delivered}, already delivered {len(payments) - len(pending)}, "
            f"failed {failed} (retried by the worker)"
        )

    def _day(self, mer_id, day, per_day, seed, now, back_url) -> tuple[list[Payment], int]:
        rng = random.Random(f"{seed}:{mer_id}:{day.isoformat()}")
        times = _times(rng, day, per_day, now)
        made, created = [], 0
        for index, txn_time in enumerate(times):
            key = f"{seed}:{mer_id}:{day.isoformat()}:{index}"
            amount = _amount(rng)
            pan, card_type = _card(rng)
            channel = "08" if rng.random() < MOBILE_SHARE else "07"
            failed = rng.random() < FAILURE_SHARE
            code = rng.choices([c for c, _w in FAILURES], weights=[w for _c, w in FAILURES])[0] if failed else "00"
            order_id = f"SX{day:%y%m%d}{index:04d}S{seed}"[:40]
            trace_no, trace_time = services.trace_fields(txn_time, seed=key)
            with transaction.atomic():
                txn, new = SandboxTransaction.objects.get_or_create(
                    mer_id=mer_id,
                    order_id=order_id,
                    defaults={
                        "txn_time": txn_time,
                        "txn_type": "01",
                        "txn_sub_type": "01",
                        "biz_type": "000201",
                        "channel_type": channel,
                        "access_type": "0",
                        "amount": amount,
                        "status": SandboxStatus.FAILED if failed else SandboxStatus.SUCCESS,
                        "resp_code": code,
                        "query_id": services.new_query_id(txn_time, seed=key),
                        "settle_date": settlement_date_for(txn_time),
                        "trace_no": trace_no,
                        "trace_time": trace_time,
                        "card_masked": mask_pan(pan),
                        "card_hash": card_hash(pan),
                        "card_type": card_type,
                        "back_url": back_url,
                    },
                )
            created += new
            made.append(Payment(txn, pan))
        return made, created

    def _deliver(self, payments: list[Payment], concurrency: int) -> tuple[int, int]:
        if not payments:
            return 0, 0
        bodies = [encode_request(services.notification(p.txn, card_number=p.pan)) for p in payments]
        headers = {"Content-Type": "application/x-www-form-urlencoded;charset=UTF-8"}
        with httpx.Client(timeout=10.0, follow_redirects=False) as client:

            def post(item: tuple[Payment, bytes]) -> bool:
                payment, body = item
                try:
                    response = client.post(payment.txn.back_url, content=body, headers=headers)
                except httpx.HTTPError:
                    return False
                return response.status_code in (200, 302)

            with ThreadPoolExecutor(max_workers=concurrency) as pool:
                results = list(pool.map(post, zip(payments, bodies, strict=True)))
        now = timezone.now()
        ok_ids = [p.txn.pk for p, ok in zip(payments, results, strict=True) if ok]
        failed_ids = [p.txn.pk for p, ok in zip(payments, results, strict=True) if not ok]
        SandboxTransaction.objects.filter(pk__in=ok_ids).update(notify_attempts=1, delivered_at=now)
        retry_at = now + timedelta(seconds=services.notify_delay_seconds(1) or 0)
        SandboxTransaction.objects.filter(pk__in=failed_ids).update(notify_attempts=1, next_attempt_at=retry_at)
        return len(ok_ids), len(failed_ids)
