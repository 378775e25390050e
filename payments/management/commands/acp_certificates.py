"""``manage.py acp_certificates``: the inventory of the ACP gateway's keys and certificates, for the monthly review.

One row per certificate: the setting it comes from, subject, issuer, serial number in decimal (the ACP ``certId``),
validity in Beijing time, days left, key type and size, SHA-256 fingerprint. Then every problem found, with the id of
the deploy check that reports it. Exits with 1 when any problem is an error (what ``check --deploy`` would fail on).
Prints no key material and no password.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from payments.gateway.acp.signing import cert_id_of
from payments.gateway.certificates import (
    business_time,
    certificate_inventory,
    certificate_key_description,
    days_left,
    fingerprint_display,
)

HEADERS = (
    "setting",
    "subject",
    "issuer",
    "serial (certId)",
    "not before (Beijing)",
    "not after (Beijing)",
    "days left",
    "key",
    "SHA-256 fingerprint",
)


def _time(value) -> str:
    return business_time(value).strftime("%Y-%m-%d %H:%M")


class Command(BaseCommand):
    help = "Print the inventory of the ACP signing key and trusted certificates; exit 1 on any error."

    def handle(self, *args, **options):
        now = timezone.now()
        inventory = certificate_inventory(now=now)
        rows = []
        for item in inventory.items:
            cert = item.certificate
            if cert is None:
                rows.append((item.label, f"unreadable: {item.path}", "", "", "", "", "", "", ""))
                continue
            rows.append(
                (
                    item.label,
                    cert.subject.rfc4514_string(),
                    cert.issuer.rfc4514_string(),
                    cert_id_of(cert),
                    _time(cert.not_valid_before_utc),
                    _time(cert.not_valid_after_utc),
                    str(days_left(cert, now)),
                    certificate_key_description(cert),
                    fingerprint_display(cert),
                )
            )
        if rows:
            self._table(rows)
        else:
            self.stdout.write("No ACP key or certificate is configured.")
        for finding in inventory.findings:
            self.stdout.write(f"{finding.level.upper():8} {finding.check_id}  {finding.message}")
        errors = len(inventory.errors)
        self.stdout.write(
            f"{len(inventory.items)} item(s), {errors} error(s), {len(inventory.findings) - errors} warning(s)."
        )
        if errors:
            raise CommandError(f"{errors} certificate error(s): see above.", returncode=1)

    def _table(self, rows: list[tuple[str, ...]]) -> None:
        widths = [max(len(row[i]) for row in [HEADERS, *rows]) for i in range(len(HEADERS))]
        for line in [HEADERS, tuple("-" * w for w in widths), *rows]:
            self.stdout.write("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip())
