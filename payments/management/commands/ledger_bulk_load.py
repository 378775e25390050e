"""Benchmark data: ``ledger_bulk_load --rows N --merchants M [--days D]``.

Writes realistic ledger rows straight into the table (PostgreSQL ``COPY`` in chunks through
psycopg 3; ``bulk_create`` on SQLite). Payments are mostly successful consumption with some
failures, pending rows, refunds and voids linked to their original. Card numbers are generated
Luhn-valid test numbers of which only the mask and the keyed hash are written. Not for
production data: it bypasses ``ledger_record`` and writes no audit events.
"""

from __future__ import annotations

import random
import time
from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction
from django.utils import timezone

from payments.cards import card_hash, generate_test_pan, mask_pan
from payments.models import Transaction
from payments.settlement import business_tz, settlement_date_for
from portal.accounts.models import Organisation, OrganisationKind

COLUMNS = (
    "id",
    "merchant_id",
    "acquirer_id",
    "order_id",
    "txn_time",
    "txn_type",
    "txn_sub_type",
    "biz_type",
    "channel_type",
    "access_type",
    "amount",
    "currency",
    "status",
    "resp_code",
    "resp_msg",
    "query_id",
    "trace_no",
    "trace_time",
    "settle_date",
    "orig_query_id",
    "orig_id",
    "card_masked",
    "card_hash",
    "card_type",
    "req_reserved",
    "refunded_amount",
    "source",
    "created_at",
    "updated_at",
)
CARD_PREFIXES = (("622202", 19), ("622848", 19), ("625807", 16), ("621700", 19), ("436742", 16))


class Command(BaseCommand):
    help = "Bulk-load realistic ledger rows for benchmarks (PostgreSQL COPY, SQLite bulk_create)."

    def add_arguments(self, parser):
        parser.add_argument("--rows", type=int, required=True)
        parser.add_argument("--merchants", type=int, required=True)
        parser.add_argument("--days", type=int, default=365)
        parser.add_argument("--chunk", type=int, default=50_000)
        parser.add_argument("--seed", type=int, default=20260101)
        parser.add_argument("--cards", type=int, default=20_000, help="distinct card numbers to draw from")

    def handle(self, *args, rows, merchants, days, chunk, seed, cards, **options):
        if rows <= 0 or merchants <= 0 or days <= 0:
            raise CommandError("--rows, --merchants and --days must be positive.")
        rng = random.Random(seed)
        merchant_rows = self._merchants(merchants)
        card_pool = []
        for _ in range(cards):
            prefix, length = rng.choice(CARD_PREFIXES)
            pan = generate_test_pan(rng, prefix, length)
            card_pool.append((mask_pan(pan), card_hash(pan), "02" if prefix in ("625807", "436742") else "01"))
        now = timezone.now()
        start = now - timedelta(days=days)
        span = (now - start).total_seconds()
        postgres = connection.vendor == "postgresql"
        written = 0
        began = time.monotonic()
        while written < rows:
            n = min(chunk, rows - written)
            first_id = self._allocate_ids(n)
            batch = self._generate(rng, n, first_id, merchant_rows, card_pool, start, span, now)
            with transaction.atomic():
                if postgres:
                    self._copy(batch)
                else:
                    Transaction.objects.bulk_create([Transaction(**dict(zip(COLUMNS, r, strict=True))) for r in batch])
            written += n
            self.stdout.write(f"{written}/{rows} rows ({time.monotonic() - began:.1f} s)")
        if postgres:
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE payments_transaction")
        self.stdout.write(self.style.SUCCESS(f"Loaded {written} rows for {len(merchant_rows)} merchants."))

    def _merchants(self, count: int) -> list[tuple[int, int]]:
        existing = list(
            Organisation.objects.filter(kind=OrganisationKind.MERCHANT)
            .order_by("code")
            .values_list("pk", "acquirer_id")
        )
        if len(existing) >= count:
            return existing[:count]
        acquirer, _ = Organisation.objects.get_or_create(
            code="48029999",
            defaults={
                "kind": OrganisationKind.ACQUIRER,
                "name_zh": "基准测试收单机构",
                "name_en": "Benchmark acquirer",
            },
        )
        for i in range(len(existing), count):
            org = Organisation.objects.create(
                kind=OrganisationKind.MERCHANT,
                code=f"89899{i:010d}",
                name_zh=f"基准商户{i}",
                name_en=f"Benchmark merchant {i}",
                acquirer=acquirer,
                mcc="5311",
            )
            existing.append((org.pk, acquirer.pk))
        return existing

    def _allocate_ids(self, n: int) -> int:
        """Reserve ``n`` consecutive ids so that refunds can point at their originals in the same chunk."""
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                cursor.execute("SELECT pg_get_serial_sequence('payments_transaction', 'id')")
                seq = cursor.fetchone()[0]
                cursor.execute("SELECT setval(%s, nextval(%s) + %s - 1)", [seq, seq, n])
                last = cursor.fetchone()[0]
                return last - n + 1
            cursor.execute("SELECT COALESCE(MAX(id), 0) FROM payments_transaction")
            return cursor.fetchone()[0] + 1

    def _generate(self, rng, n, first_id, merchant_rows, card_pool, start, span, now) -> list[tuple]:
        tz = business_tz()
        batch: list[list] = []
        originals: list[int] = []  # indexes into batch of successful payments
        for i in range(n):
            pk = first_id + i
            merchant_id, acquirer_id = merchant_rows[rng.randrange(len(merchant_rows))]
            txn_time = start + timedelta(seconds=rng.random() * span)
            local = txn_time.astimezone(tz)
            masked, hashed, card_type = rng.choice(card_pool)
            roll = rng.random()
            txn_type, orig_query_id, orig_id, amount = "01", "", None, self._amount(rng)
            if roll < 0.04 and originals:
                j = originals[rng.randrange(len(originals))]
                orig = batch[j]
                left = orig[10] - orig[25]
                if left > 0 and orig[4] < txn_time:
                    merchant_id, acquirer_id = orig[1], orig[2]
                    same_day = orig[18] == settlement_date_for(txn_time)
                    if same_day and not orig[25] and rng.random() < 0.5:
                        txn_type, amount = "31", left
                    else:
                        txn_type = "04"
                        amount = left if rng.random() < 0.5 else max(1, left // 2)
                    orig_query_id, orig_id = orig[15], orig[0]
                    masked, hashed, card_type = orig[21], orig[22], orig[23]
                    orig[25] += amount
            status_roll = rng.random()
            if orig_id is not None or status_roll < 0.93:
                status, resp_code, resp_msg = "success", "00", "成功[0000000]"
            elif status_roll < 0.98:
                status, resp_code, resp_msg = "failed", rng.choice(["61", "64", "65", "01"]), "交易失败"
            else:
                status, resp_code, resp_msg = "pending", "05", "交易已受理，请稍后查询交易结果"
            query_id = f"{local:%Y%m%d}{pk:013d}" if status != "pending" or rng.random() < 0.5 else None
            row = [
                pk,
                merchant_id,
                acquirer_id,
                f"B{local:%Y%m%d}{pk:012d}",
                txn_time,
                txn_type,
                "01" if txn_type == "01" else "00",
                "000201",
                rng.choice(("07", "08", "08")),
                "0",
                amount,
                "156",
                status,
                resp_code,
                resp_msg,
                query_id,
                f"{pk % 1_000_000:06d}",
                local.strftime("%m%d%H%M%S"),
                settlement_date_for(txn_time),
                orig_query_id,
                orig_id,
                masked,
                hashed,
                card_type,
                "",
                0,
                "import",
                now,
                now,
            ]
            batch.append(row)
            if txn_type == "01" and status == "success" and query_id:
                originals.append(i)
        return [tuple(r) for r in batch]

    @staticmethod
    def _amount(rng) -> int:
        # Mostly small card payments, a long tail of larger ones (fen).
        return max(1, int(rng.lognormvariate(9.2, 1.3)))

    def _copy(self, batch: list[tuple]) -> None:
        sql = f"COPY payments_transaction ({', '.join(COLUMNS)}) FROM STDIN"
        with connection.cursor() as cursor:
            with cursor.cursor.copy(sql) as copy:
                for row in batch:
                    copy.write_row(row)
