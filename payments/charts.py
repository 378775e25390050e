"""The home dashboard's charts: static SVG drawn server-side with pygal (no JavaScript).

Each chart is returned as a ``data:image/svg+xml`` URI for an ``<img>``: an SVG shown as an
image runs no script and loads nothing, so the page's Content-Security-Policy stays strict
(``img-src 'self' data:``). Only numbers and our own labels go into a chart.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass

import pygal
from django.utils.translation import gettext as _
from pygal.style import Style

from .money import fen_to_yuan
from .selectors import Dashboard

_SCRIPT = re.compile(r"<script\b.*?</script>", re.S)
_STYLE = Style(
    background="transparent",
    plot_background="transparent",
    foreground="#212529",
    foreground_strong="#212529",
    foreground_subtle="#6c757d",
    colors=("#0d6efd", "#198754", "#fd7e14", "#dc3545"),
    font_family="system-ui, sans-serif",
    label_font_size=11,
    major_label_font_size=11,
    title_font_size=14,
)


@dataclass(frozen=True)
class Chart:
    key: str
    title: str
    uri: str


def _config(**extra) -> dict:
    return {
        "js": [],
        "disable_xml_declaration": True,
        "show_legend": False,
        "width": 640,
        "height": 280,
        "style": _STYLE,
        "x_label_rotation": 45,
        "show_minor_x_labels": False,
        "truncate_label": -1,
        "print_values": False,
        **extra,
    }


def _uri(chart) -> str:
    svg = _SCRIPT.sub("", chart.render(is_unicode=True))
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode()


def dashboard_charts(data: Dashboard) -> list[Chart]:
    """Four charts over the 30 days: payment count, amount (yuan), success rate (%), refunds (yuan)."""
    labels = [d.day.strftime("%m-%d") for d in data.days]
    major = labels[::5]

    def make(kind, key: str, title: str, values: list, **extra) -> Chart:
        chart = kind(**_config(**extra))
        chart.title = title
        chart.x_labels = labels
        chart.x_labels_major = major
        chart.add(title, values)
        return Chart(key=key, title=title, uri=_uri(chart))

    return [
        make(pygal.Bar, "count", _("Successful payments per day"), [d.count for d in data.days], min_scale=1),
        make(
            pygal.Line,
            "amount",
            _("Amount per day (yuan)"),
            [float(fen_to_yuan(d.amount)) for d in data.days],
            fill=True,
        ),
        make(
            pygal.Line,
            "success_rate",
            _("Success rate per day (%)"),
            [d.success_rate for d in data.days],
            range=(0, 100),
            allow_interruptions=True,
        ),
        make(
            pygal.Bar, "refunds", _("Refunds per day (yuan)"), [float(fen_to_yuan(d.refund_amount)) for d in data.days]
        ),
    ]
