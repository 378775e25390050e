"""Views of the transaction query (merchant and acquirer) and the merchant information query."""

from .dashboard import DashboardFragmentView
from .downloads import DownloadFileView, DownloadListView
from .merchants import MerchantDetailView, MerchantListView
from .transactions import (
    HistoryView,
    TodayView,
    TransactionDetailView,
    TransactionExportView,
)

__all__ = [
    "DashboardFragmentView",
    "DownloadFileView",
    "DownloadListView",
    "HistoryView",
    "MerchantDetailView",
    "MerchantListView",
    "TodayView",
    "TransactionDetailView",
    "TransactionExportView",
]
