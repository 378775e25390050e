"""Views of the transaction query (merchant and acquirer) and the merchant information query."""

from .merchants import MerchantDetailView, MerchantListView
from .transactions import (
    HistoryView,
    TodayView,
    TransactionDetailView,
    TransactionExportView,
)

__all__ = [
    "HistoryView",
    "MerchantDetailView",
    "MerchantListView",
    "TodayView",
    "TransactionDetailView",
    "TransactionExportView",
]
