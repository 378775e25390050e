"""Message codes of the pipeline. Stored as code + params, rendered in the viewer's language."""

from __future__ import annotations

from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

MESSAGES = {
    # file level
    "file_too_large": _("The file is larger than the limit of %(limit_mb)s MB."),
    "file_empty": _("The file is empty."),
    "file_type": _("Only .txt and .csv text files and .xlsx Excel workbooks are accepted."),
    "file_type_for_kind": _("This kind of batch does not accept this file format."),
    "xlsx_macro": _("Workbooks with macros (.xlsm or a VBA project) are not accepted."),
    "xlsx_not_ooxml": _("The file is not a valid Excel .xlsx workbook."),
    "xlsx_too_large": _("The workbook unpacks to more than %(limit_mb)s MB or has too many parts; it is refused."),
    "file_unreadable": _("The file could not be read."),
    "file_duplicate": _("The same file was already uploaded as batch %(batch_id)s."),
    "too_many_lines": _("The file has more than %(limit)s lines."),
    "no_lines": _("The file has no lines."),
    "no_valid_lines": _("No line of the file is valid."),
    "internal_error": _("The file could not be processed; try again or contact support."),
    # line level
    "duplicate_order_id": _("Order ID %(order_id)s is already used by line %(line_no)s of batch %(batch_id)s."),
    "duplicate_order_id_in_file": _("Order ID %(order_id)s already appears on line %(line_no)s of this file."),
    "order_id_missing": _("The order ID is missing."),
    # actions
    "not_found": _("No such batch."),
    "merchant_not_visible": _("No such merchant."),
    "merchant_required": _("Choose the merchant this file is for."),
    "not_cancellable": _("This batch can no longer be cancelled: it has been approved or has ended."),
    "not_submittable": _("Only a validated batch with at least one valid line can be submitted for review."),
}


def render_message(code: str, params: dict | None = None, kind=None) -> str:
    """The message of ``code`` in the active language, with ``params`` filled in. An unknown code
    or a parameter missing renders the bare code, never an error page."""
    if not code:
        return ""
    template = None
    if kind is not None:
        template = kind.messages.get(code)
    if template is None:
        template = MESSAGES.get(code)
    if template is None:
        return code
    text = gettext(str(template))
    try:
        return text % (params or {})
    except (KeyError, TypeError, ValueError):
        return text
