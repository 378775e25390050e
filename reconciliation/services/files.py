"""The files we produce (download centre): written under ``MEDIA_ROOT/reconciliation/``, recorded as
``ReconciliationFile`` rows with size and SHA-256, produced again with the same bytes when missing on disk.

Every file is a pure function of the closed results and the ledger: no clock, no random in the bytes. Writing goes
to a temporary name then ``os.replace``, so two workers producing the same file never leave a half-written one.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import BinaryIO

from django.conf import settings
from django.db import transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from portal.accounts.models import Organisation
from portal.audit.services import audit_record

from ..choices import ACQUIRER_KINDS, BIZ_TYPE_OF_KIND, MONTHLY_KINDS, FileKind
from ..models import AcquirerSettlement, MerchantSettlement, ReconciliationFile, SettlementDay
from ..producers import clearing, friendly, network, statement

LANG_SUFFIX = {"zh-hans": "zh", "en": "en"}


class ReconciliationFileError(Exception):
    """A file that cannot be produced (its day or month is not closed); the message is for people."""


def languages() -> list[str]:
    return [code for code, _name in settings.LANGUAGES]


def _file_name(org: Organisation, kind: str, period: date, language: str) -> str:
    lang = LANG_SUFFIX.get(language, language)
    if kind == FileKind.ZIP:
        return f"{org.code}_{period:%Y%m%d}.zip"
    ext = "pdf" if kind.endswith("_pdf") else "xlsx" if kind.endswith("_xlsx") else "csv"
    if kind in MONTHLY_KINDS:
        return f"{org.code}_{period:%Y%m}_statement_{lang}.{ext}"
    label = kind.rsplit("_", 1)[0]
    return f"{org.code}_{period:%Y%m%d}_{label}_{lang}.{ext}"


def _writer(kind: str, org: Organisation, period: date) -> Callable[[BinaryIO], object]:
    biz_type = BIZ_TYPE_OF_KIND.get(kind)
    writers: dict[str, Callable[[BinaryIO], object]] = {
        FileKind.ZIP: lambda out: network.write_merchant_zip(org, period, out),
        FileKind.DETAIL_CSV: lambda out: friendly.write_detail_csv(org, period, out),
        FileKind.DETAIL_XLSX: lambda out: friendly.write_detail_xlsx(org, period, out),
        FileKind.B2B_CSV: lambda out: friendly.write_detail_csv(org, period, out, biz_type),
        FileKind.B2B_XLSX: lambda out: friendly.write_detail_xlsx(org, period, out, biz_type),
        FileKind.EBPP_CSV: lambda out: friendly.write_detail_csv(org, period, out, biz_type),
        FileKind.EBPP_XLSX: lambda out: friendly.write_detail_xlsx(org, period, out, biz_type),
        FileKind.STATEMENT_XLSX: lambda out: statement.write_statement_xlsx(org, period, out),
        FileKind.STATEMENT_PDF: lambda out: statement.write_statement_pdf(org, period, out),
        FileKind.CLEARING_CSV: lambda out: clearing.write_clearing_csv(org, period, out),
        FileKind.CLEARING_XLSX: lambda out: clearing.write_clearing_xlsx(org, period, out),
    }
    return writers[kind]


def _write_file(path: Path, write: Callable[[BinaryIO], object]) -> tuple[int, str]:
    """Write atomically (temporary name, then rename); return size and SHA-256."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        with open(tmp, "w+b") as handle:
            write(handle)
        digest = hashlib.sha256()
        size = 0
        with open(tmp, "rb") as handle:
            while chunk := handle.read(1024 * 1024):
                digest.update(chunk)
                size += len(chunk)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return size, digest.hexdigest()


def _materialise(*, org: Organisation, kind: str, day: date | None = None, month: date | None = None, language: str):
    """Produce one file and record (or refresh) its row."""
    period = day or month
    assert period is not None
    row = ReconciliationFile(
        organisation=org,
        kind=kind,
        day=day,
        month=month,
        language=language,
        name=_file_name(org, kind, period, language),
    )
    with translation.override(language or "zh-hans"):
        size, sha = _write_file(row.path, _writer(kind, org, period))
    key = {"organisation": org, "kind": kind, "language": language}
    key.update({"day": day} if day else {"month": month})
    saved, _created = ReconciliationFile.objects.update_or_create(
        **key, defaults={"name": row.name, "size": size, "sha256": sha, "generated_at": timezone.now()}
    )
    return saved


def _record_generation(org: Organisation, files: list[ReconciliationFile], period: str) -> None:
    audit_record(
        action="reconciliation.files_generate",
        actor=None,
        actor_repr="system",
        organisation=org,
        object_type="reconciliation.reconciliationfile",
        object_id=period,
        details={"files": [f"{f.name} {f.sha256}" for f in files]},
    )


def produce_merchant_files(merchant: Organisation, day: date) -> list[ReconciliationFile]:
    """The daily files of a merchant and closed day: the network zip (ZM + ZME + RD), detail CSV and XLSX in each
    language, and B2B (bizType 000202) and EBPP (000601) files when the day has such transactions."""
    if not MerchantSettlement.objects.filter(merchant=merchant, day=day).exists():
        raise ReconciliationFileError(
            _("Settlement day %(day)s is not closed for merchant %(code)s.") % {"day": day, "code": merchant.code}
        )
    with transaction.atomic():
        files = [_materialise(org=merchant, kind=FileKind.ZIP, day=day, language="")]
        kinds = [FileKind.DETAIL_CSV, FileKind.DETAIL_XLSX]
        if friendly.has_biz_type(merchant, day, "000202"):
            kinds += [FileKind.B2B_CSV, FileKind.B2B_XLSX]
        if friendly.has_biz_type(merchant, day, "000601"):
            kinds += [FileKind.EBPP_CSV, FileKind.EBPP_XLSX]
        for kind in kinds:
            for language in languages():
                files.append(_materialise(org=merchant, kind=kind, day=day, language=language))
        _record_generation(merchant, files, day.isoformat())
    return files


def produce_acquirer_files(acquirer: Organisation, day: date) -> list[ReconciliationFile]:
    """The acquirer clearing file (收单清算文件) of a closed day, CSV and XLSX in each language."""
    if not AcquirerSettlement.objects.filter(acquirer=acquirer, day=day).exists():
        raise ReconciliationFileError(
            _("Settlement day %(day)s is not closed for acquirer %(code)s.") % {"day": day, "code": acquirer.code}
        )
    with transaction.atomic():
        files = [
            _materialise(org=acquirer, kind=kind, day=day, language=language)
            for kind in ACQUIRER_KINDS
            for language in languages()
        ]
        _record_generation(acquirer, files, day.isoformat())
    return files


def produce_monthly_statements(merchant: Organisation, month: date) -> list[ReconciliationFile]:
    """The monthly statement (月账单) XLSX and PDF in each language; the month's last day must be closed."""
    month = month.replace(day=1)
    if not SettlementDay.objects.filter(day=statement.month_end(month)).exists():
        raise ReconciliationFileError(
            _("The statement of %(month)s is produced once the month's last settlement day is closed.")
            % {"month": month.strftime("%Y-%m")}
        )
    with transaction.atomic():
        files = [
            _materialise(org=merchant, kind=kind, month=month, language=language)
            for kind in MONTHLY_KINDS
            for language in languages()
        ]
        _record_generation(merchant, files, month.strftime("%Y-%m"))
    return files


def produce_day_files(day: date) -> int:
    """Every file of a closed day (each merchant's, each acquirer's); idempotent. Returns the number of files."""
    count = 0
    for merchant in Organisation.objects.filter(settlements__day=day).select_related("acquirer"):
        count += len(produce_merchant_files(merchant, day))
    for acquirer in Organisation.objects.filter(acquirer_settlements__day=day):
        count += len(produce_acquirer_files(acquirer, day))
    if (day + timedelta(days=1)).day == 1:
        count += produce_statements_due(month=day.replace(day=1))
    return count


def produce_statements_due(*, month: date) -> int:
    """The statements of ``month`` for every merchant with a closed day in it (the job of the 1st)."""
    month = month.replace(day=1)
    if not SettlementDay.objects.filter(day=statement.month_end(month)).exists():
        return 0
    merchants = Organisation.objects.filter(
        settlements__day__gte=month, settlements__day__lte=statement.month_end(month)
    ).distinct()
    return sum(len(produce_monthly_statements(merchant, month)) for merchant in merchants)


def reconciliation_file_ensure(file: ReconciliationFile) -> Path:
    """The file's path on disk, produced again first when it is missing (same bytes, same SHA-256)."""
    if not file.path.exists():
        refreshed = _materialise(
            org=file.organisation, kind=file.kind, day=file.day, month=file.month, language=file.language
        )
        file.sha256, file.size = refreshed.sha256, refreshed.size
    return file.path


def reconciliation_file_download(*, actor, file: ReconciliationFile) -> Path:
    """Audit a download (``reconciliation.file_download``) and return the path to send."""
    path = reconciliation_file_ensure(file)
    with transaction.atomic():
        audit_record(
            action="reconciliation.file_download",
            actor=actor,
            obj=file,
            details={"name": file.name, "sha256": file.sha256, "organisation": file.organisation.code},
        )
    return path
