"""Tables of the transaction and merchant pages (paging and sorting are keyset, done by the view)."""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

import django_tables2 as tables
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext_lazy as _

from . import settlement
from .choices import ChannelType, TxnStatus, TxnType
from .money import format_yuan

STATUS_BADGE = {"success": "text-bg-success", "failed": "text-bg-danger", "pending": "text-bg-warning"}


# Choice value → lazy label, built once; translated once per request by ``choice_labels``.
TXN_TYPE_LABELS = dict(TxnType.choices)
CHANNEL_LABELS = dict(ChannelType.choices)
STATUS_LABELS = dict(TxnStatus.choices)


def choice_labels(labels: dict) -> dict[str, str]:
    """``labels`` (value → lazy label) translated into the active language."""
    return {value: str(label) for value, label in labels.items()}


@dataclass(frozen=True)
class TxnColumn:
    name: str
    header: str
    css: str = ""


@dataclass(frozen=True)
class TxnRow:
    pk: int
    url: str
    txn_time: str
    merchant: str
    order_id: str
    query_id: str
    txn_type: str
    channel: str
    card: str
    amount: str
    status: str
    status_label: str
    badge: str


@dataclass
class TransactionTable:
    """The rows of a transaction list page, every cell formatted once in Python; ``body_html`` writes the
    ``<tbody>`` rows (every value escaped) for ``payments/_transaction_table.html`` in one pass, about a
    tenth of what the template engine needs for 50 rows of nine cells (paging and sorting are keyset, done
    by the view).

    Labels come from the choice dicts above, translated once per table instead of once per cell.
    """

    columns: list[TxnColumn]
    rows: list[TxnRow]
    show_merchant: bool = False
    empty_text: str = ""

    @classmethod
    def build(cls, records, *, show_merchant: bool = False) -> TransactionTable:
        tz = settlement.business_tz()
        types = choice_labels(TXN_TYPE_LABELS)
        channels = choice_labels(CHANNEL_LABELS)
        statuses = choice_labels(STATUS_LABELS)
        # One reverse for the page: the detail URL with the id as the only variable part.
        url_head, url_tail = reverse("payments:detail", args=[0]).rsplit("0", 1)
        rows = [
            TxnRow(
                pk=t.pk,
                url=f"{url_head}{t.pk}{url_tail}",
                txn_time=t.txn_time.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S"),
                merchant=t.merchant.code if show_merchant else "",
                order_id=t.order_id,
                query_id=t.query_id or "—",
                txn_type=types.get(t.txn_type, t.txn_type),
                channel=channels.get(t.channel_type, t.channel_type),
                card=t.card_masked or "—",
                amount=format_yuan(t.amount),
                status=t.status,
                status_label=statuses.get(t.status, t.status),
                badge=STATUS_BADGE.get(t.status, "text-bg-secondary"),
            )
            for t in records
        ]
        return cls(
            columns=transaction_columns(show_merchant),
            rows=rows,
            show_merchant=show_merchant,
            empty_text=str(_("No transactions match this search.")),
        )

    def body_html(self) -> SafeString:
        if not self.rows:
            return mark_safe(f'<tr><td colspan="{len(self.columns)}">{escape(self.empty_text)}</td></tr>')
        merchant = self.show_merchant
        parts = []
        for r in self.rows:
            parts.append(
                f"<tr><td>{escape(r.txn_time)}</td>"
                + (f"<td>{escape(r.merchant)}</td>" if merchant else "")
                + f'<td><a href="{escape(r.url)}">{escape(r.order_id)}</a></td>'
                f"<td>{escape(r.query_id)}</td><td>{escape(r.txn_type)}</td><td>{escape(r.channel)}</td>"
                f'<td>{escape(r.card)}</td><td class="text-end">{escape(r.amount)}</td>'
                f'<td><span class="badge {escape(r.badge)}">{escape(r.status_label)}</span></td></tr>'
            )
        return mark_safe("\n".join(parts))  # every value above is escaped


def transaction_columns(show_merchant: bool) -> list[TxnColumn]:
    """The list's column headers in the active language, in display order."""
    columns = [
        TxnColumn("txn_time", str(_("Time (Beijing)"))),
        TxnColumn("merchant", str(_("Merchant"))),
        TxnColumn("order_id", str(_("Order ID"))),
        TxnColumn("query_id", str(_("Query ID"))),
        TxnColumn("txn_type", str(_("Type"))),
        TxnColumn("channel_type", str(_("Channel"))),
        TxnColumn("card_masked", str(_("Card"))),
        TxnColumn("amount", str(_("Amount (yuan)")), "text-end"),
        TxnColumn("status", str(_("Status"))),
    ]
    return columns if show_merchant else [c for c in columns if c.name != "merchant"]


class MerchantTable(tables.Table):
    code = tables.Column(verbose_name=_("Merchant number"))
    name_zh = tables.Column(verbose_name=_("Chinese name"))
    name_en = tables.Column(verbose_name=_("English name"))
    mcc = tables.Column(verbose_name=_("MCC"))
    status = tables.Column(verbose_name=_("Status"))
    user_count = tables.Column(verbose_name=_("Users"), attrs={"td": {"class": "text-end"}})

    class Meta:
        orderable = False
        template_name = "django_tables2/bootstrap5.html"
        attrs = {"class": "table table-sm table-hover", "data-testid": "merchant-table"}
        empty_text = _("No merchants.")

    def render_code(self, value, record):
        return format_html('<a href="{}">{}</a>', reverse("payments:merchant_detail", args=[record.pk]), value)

    def render_status(self, record):
        return record.get_status_display()
