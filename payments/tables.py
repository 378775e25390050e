"""django-tables2 tables of the transaction pages (paging and sorting are keyset, done by the view)."""

import django_tables2 as tables
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from . import settlement
from .money import format_yuan

STATUS_BADGE = {"success": "text-bg-success", "failed": "text-bg-danger", "pending": "text-bg-warning"}


class TransactionTable(tables.Table):
    txn_time = tables.Column(verbose_name=_("Time (Beijing)"))
    merchant = tables.Column(verbose_name=_("Merchant"), accessor="merchant__code")
    order_id = tables.Column(verbose_name=_("Order ID"))
    query_id = tables.Column(verbose_name=_("Query ID"))
    txn_type = tables.Column(verbose_name=_("Type"))
    channel_type = tables.Column(verbose_name=_("Channel"))
    card_masked = tables.Column(verbose_name=_("Card"))
    amount = tables.Column(
        verbose_name=_("Amount (yuan)"), attrs={"td": {"class": "text-end"}, "th": {"class": "text-end"}}
    )
    status = tables.Column(verbose_name=_("Status"))

    class Meta:
        orderable = False
        template_name = "django_tables2/bootstrap5.html"
        attrs = {"class": "table table-sm table-hover align-middle", "data-testid": "txn-table"}
        empty_text = _("No transactions match this search.")

    def __init__(self, *args, show_merchant: bool = False, **kwargs):
        exclude = () if show_merchant else ("merchant",)
        super().__init__(*args, exclude=exclude, **kwargs)

    def render_txn_time(self, value):
        return value.astimezone(settlement.business_tz()).strftime("%Y-%m-%d %H:%M:%S")

    def render_order_id(self, value, record):
        return format_html('<a href="{}">{}</a>', reverse("payments:detail", args=[record.pk]), value)

    def render_txn_type(self, record):
        return record.get_txn_type_display()

    def render_channel_type(self, record):
        return record.get_channel_type_display()

    def render_amount(self, value):
        return format_yuan(value)

    def render_status(self, value, record):
        return format_html(
            '<span class="badge {}">{}</span>',
            STATUS_BADGE.get(value, "text-bg-secondary"),
            record.get_status_display(),
        )


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
