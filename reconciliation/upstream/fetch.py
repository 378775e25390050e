"""The automatic import: after 09:00 Beijing on T+1, ask the gateway for each merchant's file of day T (file
transfer, txnType 76) and import it. Idempotent: a merchant day with a completed run, or already fetched by file
transfer (whatever the outcome), is not asked again; ``respCode 98`` (not there yet) leaves no trace."""

from __future__ import annotations

import logging
from datetime import datetime, time, timedelta

from django.conf import settings
from django.utils import timezone

from payments.gateway.acp.errors import ACPError
from payments.gateway.acp.reconfiles import zip_name
from payments.settlement import business_today, business_tz
from portal.accounts.models import Organisation, OrganisationKind

from .choices import RunSource, RunStatus
from .importer import reconciliation_import
from .models import ReconciliationRun

logger = logging.getLogger(__name__)
FETCH_AFTER = time(9, 0)


def due_days(now: datetime) -> list:
    """Settlement days T of the lookback window whose file is due (now ≥ T+1 09:00 Beijing), oldest first."""
    today = business_today(now)
    days = []
    for back in range(settings.RECON_FETCH_LOOKBACK_DAYS, 0, -1):
        day = today - timedelta(days=back)
        if now >= datetime.combine(day + timedelta(days=1), FETCH_AFTER, tzinfo=business_tz()):
            days.append(day)
    return days


def _client(mer_id: str):
    from payments.gateway.config import gateway_client

    return gateway_client(mer_id)


def upstream_fetch_due(*, now: datetime | None = None, client_factory=None) -> list[int]:
    """Fetch and import every due, not yet reconciled merchant day; return the ids of the runs created."""
    now = now or timezone.now()
    client_factory = client_factory or _client
    created: list[int] = []
    merchants = list(Organisation.objects.filter(kind=OrganisationKind.MERCHANT).order_by("code"))
    for day in due_days(now):
        done = set(
            ReconciliationRun.objects.filter(settle_date=day, status=RunStatus.COMPLETED).values_list(
                "merchant_id", flat=True
            )
        ) | set(
            ReconciliationRun.objects.filter(settle_date=day, source=RunSource.FILE_TRANSFER).values_list(
                "merchant_id", flat=True
            )
        )
        for merchant in merchants:
            if merchant.pk in done:
                continue
            try:
                with client_factory(merchant.code) as client:
                    answer = client.file_transfer(settle_date=f"{day:%m%d}")
                    if answer.resp_code == "98":
                        continue
                    if answer.resp_code != "00":
                        logger.warning("recon fetch %s %s: respCode %s", merchant.code, day, answer.resp_code)
                        continue
                    data = answer.file_content()
            except ACPError as exc:  # infrastructure: try again next hour
                logger.warning("recon fetch %s %s failed: %s", merchant.code, day, type(exc).__name__)
                continue
            run = reconciliation_import(
                actor=None,
                source=RunSource.FILE_TRANSFER,
                file_name=answer.params.get("fileName") or zip_name(day, merchant.code),
                data=data,
                now=now,
            )
            created.append(run.pk)
    return created
