"""Writes of the reconciliation app: the settlement-day close and the files we produce (one write path)."""

from .close import (
    SettlementCloseError,
    last_finished_day,
    settlement_close_day,
    settlement_close_due,
    settlement_compute_day,
)
from .files import (
    ReconciliationFileError,
    produce_acquirer_files,
    produce_day_files,
    produce_merchant_files,
    produce_monthly_statements,
    produce_statements_due,
    reconciliation_file_download,
    reconciliation_file_ensure,
)

__all__ = [
    "ReconciliationFileError",
    "SettlementCloseError",
    "produce_statements_due",
    "last_finished_day",
    "produce_acquirer_files",
    "produce_day_files",
    "produce_merchant_files",
    "produce_monthly_statements",
    "reconciliation_file_download",
    "reconciliation_file_ensure",
    "settlement_close_day",
    "settlement_close_due",
    "settlement_compute_day",
]
