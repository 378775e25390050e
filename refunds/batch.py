"""The batch refund kind (批量退货) of the batch-file pipeline: parse, validate, send, recover,
result file. Registered from ``RefundsConfig.ready()``.

Validation is set-based per chunk: the originals of the chunk's lines in two queries (by query id,
by merchant order id), the amounts already held per original in one aggregate (single refunds in
flight, lines of live refund batches — this file's earlier chunks included — not yet in the
ledger), the order ids already used by single refunds or ledger rows in one query. Lines of one
original inside the chunk are then allocated in file order, so a line that would take the total
past the payment's amount is refused. An acquirer's file for several of its merchants (no merchant
chosen at upload) names each line's merchant (``merId``); its lines are checked merchant by merchant
the same way, in chunks on PostgreSQL too (``bulk.BULK`` declines such a batch).

Processing sends each valid line as a void (``31``) or refund (``04``) with its own order id,
after a last check of the cap under a row lock on the original; ``txnTime`` is saved on the line
before the first attempt, so ``recover_line`` (a killed worker) queries by orderId + txnTime and
resends only what the network never received.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import datetime
from typing import NamedTuple

from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone, translation
from django.utils.translation import gettext_lazy as _

from payments.choices import REFUNDABLE_TYPES, TxnStatus
from payments.gateway.acp.errors import GatewayConnectionError, GatewayHTTPError
from payments.models import Transaction
from payments.money import format_yuan
from payments.selectors import merchant_refund_window_days
from payments.settlement import current_settlement_day
from portal.accounts.models import Organisation, OrganisationKind
from portal.accounts.roles import Perm
from portal.batches.choices import RELEASED, LineStatus
from portal.batches.errors import render_message
from portal.batches.models import Batch, BatchLine, BatchOrderId
from portal.batches.registry import BatchKind, LineError, LineResult, ParsedLine

from . import gateway
from .bulk import BULK
from .formats.columns import BEIJING, LABELS
from .formats.parse import line_data
from .formats.parse import parse as parse_file
from .formats.result import ResultRow, write_text_result, write_xlsx_result
from .models import Refund
from .selectors import BATCH_KIND, reserved_by_lines, reserved_by_refunds, window_expired

logger = logging.getLogger(__name__)

MESSAGES = {
    # file level
    "header_invalid": _(
        "Line 1 must be the header version|totalAmt|totalQty|reqReserved1|reqReserved2 with the total amount "
        "(fen) and the number of lines."
    ),
    "title_invalid": _("Line 2 (the first row of a workbook) must name the columns, e.g. orderId|txnAmt|origQryId."),
    "unknown_column": _("Unknown column %(name)s (position %(position)s) on line %(line)s."),
    "duplicate_column": _("The column %(name)s appears twice on line %(line)s."),
    "missing_column": _("The column %(name)s is missing on line %(line)s."),
    "missing_orig_column": _(
        "Name the original payment: a column origQryId, or both origOrderId and origTxnTime (line %(line)s)."
    ),
    "totals_mismatch": _(
        "The header says %(header_count)s lines for %(header_amount)s fen, but the file has %(count)s lines "
        "for %(amount)s fen."
    ),
    # line level: format
    "line_unreadable": _("The line could not be read (too long or not in UTF-8 / GBK)."),
    "column_count": _("The line has %(found)s fields; the title line names %(expected)s."),
    "order_id_format": _("The order ID must be 8 to 32 letters and digits (got %(value)s)."),
    "id_format": _("This id must be letters and digits only (got %(value)s)."),
    "excel_number_id": _(
        "This id was stored as a number (%(value)s): Excel rounds long numbers, so it is refused. Format the "
        "column as Text (Format Cells → Text) before typing or pasting the ids, or start each id with an apostrophe."
    ),
    "formula": _("The cell holds a formula; type the value itself (formulas are not accepted)."),
    "field_too_long": _("The field is too long (at most %(limit)s characters)."),
    "amount_missing": _("The amount is missing."),
    "amount_format": _("The amount must be a whole number of fen (got %(value)s)."),
    "amount_yuan_format": _("The amount must be in yuan with at most two decimals (got %(value)s)."),
    "amount_not_positive": _("The amount must be more than zero."),
    "orig_missing": _("Name the original payment: origQryId, or both origOrderId and origTxnTime."),
    "orig_time_format": _("The original transaction time must be YYYYMMDDhhmmss (got %(value)s)."),
    "currency": _("Only currency 156 (CNY) is accepted (got %(value)s)."),
    # line level: against the ledger
    "merid_mismatch": _("The merchant number %(value)s is not the merchant of this batch (%(merchant)s)."),
    "merid_required": _("Name the merchant of this line (merId): this file is for several merchants."),
    "merid_unknown": _("The merchant number %(value)s is not one of your merchants."),
    "orig_not_found": _("No payment of this merchant matches the original named on this line."),
    "orig_time_mismatch": _("The original order %(order_id)s was not made at %(value)s."),
    "orig_not_payment": _("The original transaction is not a payment and cannot be refunded."),
    "orig_not_success": _("The original payment did not succeed and cannot be refunded."),
    "window_expired": _("The original payment is more than %(days)s days old: it can no longer be refunded online."),
    "amount_exceeds": _(
        "The amount (%(amount)s yuan) is more than what can still be refunded of the original payment after "
        "earlier refunds, pending refunds and earlier lines of this file: %(refundable)s yuan."
    ),
    "order_id_used": _("The order ID %(order_id)s is already used by another refund or transaction of the merchant."),
    "over_refundable_at_send": _("Not sent: the original payment no longer has enough left to refund."),
}

COLUMNS = {**LABELS}


# --- parse and validate --------------------------------------------------------------------------------


def refund_parse(stream, fmt, ctx):
    for item in parse_file(stream, fmt):
        if isinstance(item, ParsedLine):
            line_data(item.data)
        yield item


def _batch_merchant(batch) -> Organisation:
    return batch.merchant or batch.organisation


def is_multi_merchant(batch) -> bool:
    """An acquirer's file for several of its merchants (no merchant chosen at upload): each line names
    its merchant (``merId``) and is checked against that merchant's ledger, window and order ids."""
    return batch.merchant_id is None and batch.organisation.kind == OrganisationKind.ACQUIRER


def _acquirer_merchants(batch, codes: set[str], ctx) -> dict[str, Organisation]:
    """Of the merchant numbers ``codes``, those of merchants the batch's acquirer acquires (kept for
    the run: a file names a handful of merchants over many chunks). Another acquirer's merchant and
    an unknown number are alike: absent."""
    known: dict[str, Organisation | None] = ctx.state.setdefault("refund_merchants", {}) if ctx is not None else {}
    missing = codes - known.keys()
    if missing:
        found = Organisation.objects.filter(
            kind=OrganisationKind.MERCHANT, acquirer_id=batch.organisation_id, code__in=missing
        ).select_related("merchant_profile")
        for merchant in found:
            known[merchant.code] = merchant
        for code in missing:
            known.setdefault(code, None)
    return {code: known[code] for code in codes if known.get(code) is not None}


def refund_validate_chunk(batch, lines: list[ParsedLine], ctx) -> list[LineError]:
    """Check a chunk of parsed lines against the ledger (see the module docstring). A batch of one
    merchant: a line naming another ``merId`` is refused. An acquirer's batch for several merchants:
    each line must name one of the acquirer's merchants, and the chunk's lines are checked merchant by
    merchant, each group exactly as a single-merchant batch's lines."""
    errors: list[LineError] = []

    def refuse(line, code, column="", **params):
        errors.append(LineError(line.line_no, code, column=column, params=params, order_id=line.order_id))

    groups: dict[int, tuple[Organisation, list[ParsedLine]]] = {}
    if is_multi_merchant(batch):
        merchants = _acquirer_merchants(batch, {p.data["merId"] for p in lines if p.data.get("merId")}, ctx)
        for line in lines:
            mer_id = line.data.get("merId")
            if not mer_id:
                refuse(line, "merid_required", "merId")
                continue
            merchant = merchants.get(mer_id)
            if merchant is None:
                refuse(line, "merid_unknown", "merId", value=mer_id)
                continue
            line.merchant_id = merchant.pk
            groups.setdefault(merchant.pk, (merchant, []))[1].append(line)
    else:
        merchant = _batch_merchant(batch)
        candidates = []
        for line in lines:
            mer_id = line.data.get("merId")
            if mer_id and mer_id != merchant.code:
                refuse(line, "merid_mismatch", "merId", value=mer_id, merchant=merchant.code)
                continue
            candidates.append(line)
        groups[merchant.pk] = (merchant, candidates)
    now = timezone.now()
    for merchant, candidates in groups.values():
        _validate_for_merchant(batch, merchant, candidates, ctx, refuse, now)
    return errors


def _validate_for_merchant(batch, merchant: Organisation, candidates: list[ParsedLine], ctx, refuse, now) -> None:
    """The checks of ``candidates``, lines of ``merchant``, against its ledger (originals, order ids,
    window) and the cap; ``refuse(line, code, column, **params)`` records a bad line. A valid line gets
    its ``ref`` (the original), ``merchant_id`` and the data the processing needs."""
    if not candidates:
        return
    by_qid = {p.data["origQryId"] for p in candidates if p.data.get("origQryId")}
    by_order = {p.data["origOrderId"] for p in candidates if not p.data.get("origQryId")}
    originals_q = _originals(merchant.pk, "query_id", by_qid)
    originals_o = _originals(merchant.pk, "order_id", by_order)
    order_ids = {p.order_id for p in candidates}
    used, held = _used_and_held_order_ids(merchant.pk, order_ids)
    # The first line of the file naming an order id (of this merchant) keeps it (earlier chunks: the
    # valid ones hold it in the database, the invalid ones are remembered here); a later line naming it
    # is a duplicate and takes none of the refundable amount.
    first_lines = ctx.state.setdefault("refund_first_lines", {}) if ctx is not None else {}
    seen: dict[str, int] = {}
    window = merchant_refund_window_days(merchant)
    today = current_settlement_day(now)
    refused: set[int] = set()

    def reject(line, code, column="", **params):
        refused.add(line.line_no)
        refuse(line, code, column, **params)

    resolved: list[tuple[ParsedLine, _Original]] = []
    for line in candidates:
        if line.order_id in used:
            reject(line, "order_id_used", "orderId", order_id=line.order_id)
            continue
        holder = held.get(line.order_id)
        if holder is not None and holder[0] != batch.pk:
            reject(line, "duplicate_order_id", "orderId", order_id=line.order_id, batch_id=holder[0], line_no=holder[1])
            continue
        first = (
            seen.get(line.order_id) or first_lines.get((merchant.pk, line.order_id)) or (holder[1] if holder else None)
        )
        if first is not None:
            reject(line, "duplicate_order_id_in_file", "orderId", order_id=line.order_id, line_no=first)
            continue
        seen[line.order_id] = line.line_no
        qid = line.data.get("origQryId")
        if qid:
            original = originals_q.get(qid)
            column = "origQryId"
        else:
            original = originals_o.get(line.data["origOrderId"])
            column = "origOrderId"
        if original is None:
            reject(line, "orig_not_found", column)
            continue
        if line.data.get("origTxnTime"):
            given = datetime.strptime(line.data["origTxnTime"], "%Y%m%d%H%M%S").replace(tzinfo=BEIJING)
            if abs((original.txn_time - given).total_seconds()) >= 1:
                reject(
                    line,
                    "orig_time_mismatch",
                    "origTxnTime",
                    order_id=original.order_id,
                    value=line.data["origTxnTime"],
                )
                continue
        if original.txn_type not in REFUNDABLE_TYPES:
            reject(line, "orig_not_payment", column)
            continue
        if original.status != TxnStatus.SUCCESS:
            reject(line, "orig_not_success", column)
            continue
        if window_expired(original, window, now):
            reject(line, "window_expired", column, days=window)
            continue
        resolved.append((line, original))

    ids = {o.pk for _l, o in resolved}
    held_amounts = defaultdict(int)
    # What this file's earlier chunks took of each original, kept for the run (the database would
    # give the same sum: those lines are valid and not in the ledger); other batches are asked.
    own = ctx.state.setdefault("refund_held_by_file", defaultdict(int)) if ctx is not None else defaultdict(int)
    if ids:
        for pk, amount in reserved_by_refunds(ids).items():
            held_amounts[pk] += amount
        exclude_batch = batch.pk if ctx is not None else None
        if exclude_batch is None or _other_live_batches(batch, merchant):
            for pk, amount in reserved_by_lines(ids, exclude_batch_id=exclude_batch).items():
                held_amounts[pk] += amount
    left = {o.pk: o.amount - o.refunded_amount - held_amounts[o.pk] - own.get(o.pk, 0) for _l, o in resolved}
    for line, original in resolved:
        remaining = left[original.pk]
        if line.amount > remaining:
            reject(
                line,
                "amount_exceeds",
                "txnAmt",
                amount=format_yuan(line.amount),
                refundable=format_yuan(max(0, remaining)),
            )
            continue
        full_and_untouched = remaining == original.amount and line.amount == original.amount
        void = full_and_untouched and original.settle_date == today
        left[original.pk] = remaining - line.amount
        own[original.pk] += line.amount
        line.ref = str(original.pk)
        line.merchant_id = merchant.pk
        line.data["origId"] = original.pk
        if not line.data.get("origQryId"):
            # named by order id and time: the query id found (by query id: the same as origQryId)
            line.data["origQryIdResolved"] = original.query_id or ""
        line.data["txnType"] = "31" if void else "04"
    for order_id, line_no in seen.items():
        if line_no in refused:
            first_lines[(merchant.pk, order_id)] = line_no


_ORIGINAL_FIELDS = (
    "id",
    "query_id",
    "order_id",
    "txn_time",
    "txn_type",
    "status",
    "amount",
    "refunded_amount",
    "settle_date",
)


class _Original(NamedTuple):
    pk: int
    query_id: str | None
    order_id: str
    txn_time: datetime
    txn_type: str
    status: str
    amount: int
    refunded_amount: int
    settle_date: object


def _other_live_batches(batch, merchant) -> bool:
    """Whether another refund batch of the merchant may hold lines of its payments (a batch not
    cancelled, rejected, expired or invalid): its own batches, and its acquirer's batches for several
    merchants. When none does, the lines' cap query is skipped."""
    of_merchant = Q(merchant=merchant) | Q(merchant__isnull=True, organisation=merchant)
    if merchant.acquirer_id:
        of_merchant |= Q(merchant__isnull=True, organisation_id=merchant.acquirer_id)
    return (
        Batch.objects.filter(of_merchant, kind=BATCH_KIND)
        .exclude(pk=batch.pk)
        .exclude(status__in=sorted(RELEASED))
        .exists()
    )


def _pg() -> bool:
    return connection.vendor == "postgresql"


def _originals(merchant_id: int, column: str, values: set[str]) -> dict[str, _Original]:
    """The merchant's ledger rows whose ``column`` (query_id or order_id) is one of ``values``, as
    tuples (no model instances: a chunk holds thousands). One array parameter on PostgreSQL."""
    if not values:
        return {}
    key = _ORIGINAL_FIELDS.index(column)
    if _pg():
        table = Transaction._meta.db_table
        sql = f"SELECT {', '.join(_ORIGINAL_FIELDS)} FROM {table} WHERE merchant_id = %s AND {column} = ANY(%s)"
        with connection.cursor() as cursor:
            cursor.execute(sql, [merchant_id, list(values)])
            rows = cursor.fetchall()
    else:
        lookup = {f"{column}__in": values}
        rows = Transaction.objects.filter(merchant_id=merchant_id, **lookup).values_list(*_ORIGINAL_FIELDS)
    return {row[key]: _Original(*row) for row in rows}


def _used_and_held_order_ids(merchant_id: int, order_ids: set[str]) -> tuple[set[str], dict[str, tuple[int, int]]]:
    """Of ``order_ids``: those already used by a single refund or a ledger row of the merchant, and
    those already held by a batch line (this file's earlier chunks included), with the holder's
    ``(batch_id, line_no)``. One round trip on PostgreSQL."""
    if not order_ids:
        return set(), {}
    if _pg():
        sql = (
            f"SELECT order_id, NULL::bigint, NULL::int FROM {Refund._meta.db_table} "
            "WHERE merchant_id = %s AND order_id = ANY(%s) "
            f"UNION ALL SELECT order_id, NULL, NULL FROM {Transaction._meta.db_table} "
            "WHERE merchant_id = %s AND order_id = ANY(%s) "
            f"UNION ALL SELECT order_id, batch_id, line_no FROM {BatchOrderId._meta.db_table} "
            "WHERE family = %s AND merchant_id = %s AND order_id = ANY(%s)"
        )
        ids = list(order_ids)
        used, held = set(), {}
        with connection.cursor() as cursor:
            cursor.execute(sql, [merchant_id, ids, merchant_id, ids, BATCH_KIND, merchant_id, ids])
            for order_id, batch_id, line_no in cursor.fetchall():
                if batch_id is None:
                    used.add(order_id)
                else:
                    held[order_id] = (batch_id, line_no)
        return used, held
    used = set(
        Refund.objects.filter(merchant_id=merchant_id, order_id__in=order_ids).values_list("order_id", flat=True)
    ) | set(
        Transaction.objects.filter(merchant_id=merchant_id, order_id__in=order_ids).values_list("order_id", flat=True)
    )
    held = {
        order_id: (batch_id, line_no)
        for order_id, batch_id, line_no in BatchOrderId.objects.filter(
            family=BATCH_KIND, merchant_id=merchant_id, order_id__in=order_ids
        ).values_list("order_id", "batch_id", "line_no")
    }
    return used, held


# --- process and recover -------------------------------------------------------------------------------


def _line_merchant(batch, line) -> Organisation:
    if line.merchant_id and line.merchant_id != getattr(batch.merchant, "pk", None):
        return Organisation.objects.get(pk=line.merchant_id)
    return _batch_merchant(batch)


def _prepare(line) -> tuple[str, datetime]:
    """Fix the line's txnTime (and turn a void whose settlement day closed into a refund) and save
    it before the first attempt."""
    data = dict(line.data)
    if data.get("txnTime"):
        return data.get("txnType", "04"), datetime.strptime(data["txnTime"], "%Y%m%d%H%M%S").replace(tzinfo=BEIJING)
    now = timezone.now().replace(microsecond=0)
    if data.get("txnType") == "31":
        original = Transaction.objects.filter(pk=data.get("origId")).only("settle_date").first()
        if original is None or original.settle_date != current_settlement_day(now):
            data["txnType"] = "04"
    data["txnTime"] = now.astimezone(BEIJING).strftime("%Y%m%d%H%M%S")
    BatchLine.objects.filter(pk=line.pk).update(data=data, updated_at=timezone.now())
    line.data = data
    return data["txnType"], now


def _orig_query_id(line) -> str:
    """The original's query id: the line's ``origQryId``, or the one found for its order id and time."""
    return line.data.get("origQryIdResolved") or line.data.get("origQryId", "")


def _cap_allows(line) -> bool:
    """Under a row lock on the original: is this line's amount still within what is refundable,
    counting every other refund and line in flight? (The last guard before money moves.)"""
    with transaction.atomic():
        original = (
            Transaction.objects.select_for_update()
            .filter(pk=line.data.get("origId"))
            .only("pk", "amount", "refunded_amount")
            .first()
        )
        if original is None:
            return False
        held = reserved_by_refunds([original.pk]).get(original.pk, 0)
        held += reserved_by_lines([original.pk], exclude_line_id=line.pk).get(original.pk, 0)
        return line.amount <= original.amount - original.refunded_amount - held


def _outcome(batch, line, merchant, txn_type, txn_time, answer: gateway.Answer) -> LineResult | None:
    if answer.status in (gateway.SUCCEEDED, gateway.FAILED) and "origRespCode" in answer.params:
        gateway.record_in_ledger(
            merchant=merchant,
            order_id=line.order_id,
            txn_time=txn_time,
            txn_type=txn_type,
            amount=line.amount,
            orig_query_id=_orig_query_id(line),
            answer=answer,
        )
        status = LineStatus.SUCCEEDED if answer.status == gateway.SUCCEEDED else LineStatus.FAILED
        return LineResult(status, answer.result())
    if answer.status == gateway.FAILED:
        return LineResult(LineStatus.FAILED, answer.result())
    return None


def _send_and_settle(batch, line, merchant, txn_type, txn_time) -> LineResult:
    try:
        answer = gateway.send(
            mer_id=merchant.code,
            txn_type=txn_type,
            order_id=line.order_id,
            amount=line.amount,
            orig_query_id=_orig_query_id(line),
            txn_time=txn_time,
            req_reserved=line.data.get("reqReserved", ""),
        )
    except (GatewayConnectionError, GatewayHTTPError) as exc:
        # Infrastructure: the pipeline leaves the line processing and the task retries (recover_line).
        raise ConnectionError(str(exc)) from exc
    if answer.status == gateway.RETRY:
        raise ConnectionError("the gateway asked to retry later")
    final = _outcome(batch, line, merchant, txn_type, txn_time, answer)
    if final is not None:
        return final
    # Accepted (or unknown): ask once at once; the sandbox and fast networks answer final already.
    return _settle_by_query(batch, line, merchant, txn_type, txn_time, accepted=answer)


def _settle_by_query(batch, line, merchant, txn_type, txn_time, accepted=None) -> LineResult:
    try:
        answer = gateway.query(mer_id=merchant.code, order_id=line.order_id, txn_time=txn_time, txn_type=txn_type)
    except (GatewayConnectionError, GatewayHTTPError):
        answer = gateway.Answer(gateway.PENDING)
    final = _outcome(batch, line, merchant, txn_type, txn_time, answer)
    if final is not None:
        return final
    result = accepted.result() if accepted is not None else {}
    result["needs_query"] = True
    _enqueue_confirm(line.pk)
    return LineResult(LineStatus.SENT, result)


def _enqueue_confirm(line_id: int) -> None:
    from .tasks import confirm_batch_line

    transaction.on_commit(lambda: confirm_batch_line.apply_async(args=(line_id,), countdown=5))


def refund_process_line(batch, line) -> LineResult:
    """Send one valid line (claimed ``processing`` by the pipeline)."""
    merchant = _line_merchant(batch, line)
    if not _cap_allows(line):
        return LineResult(
            LineStatus.FAILED, {"respCode": "", "respMsg": str(render_message("over_refundable_at_send", {}, _KIND))}
        )
    txn_type, txn_time = _prepare(line)
    return _send_and_settle(batch, line, merchant, txn_type, txn_time)


def refund_recover_line(batch, line) -> LineResult | None:
    """A line found ``processing`` (killed worker): never sent (no txnTime saved) → send now; else
    ask by query; resend (same order id and txnTime) only when the network never received it."""
    merchant = _line_merchant(batch, line)
    if not line.data.get("txnTime"):
        return refund_process_line(batch, line)
    txn_type, txn_time = _prepare(line)
    try:
        answer = gateway.query(mer_id=merchant.code, order_id=line.order_id, txn_time=txn_time, txn_type=txn_type)
    except (GatewayConnectionError, GatewayHTTPError):
        return None
    if answer.status == gateway.NOT_FOUND:
        return _send_and_settle(batch, line, merchant, txn_type, txn_time)
    final = _outcome(batch, line, merchant, txn_type, txn_time, answer)
    if final is not None:
        return final
    _enqueue_confirm(line.pk)
    return None


def batch_line_confirm(*, line_id: int) -> str | None:
    """Learn the outcome of a line left ``sent``: from the ledger (the notification) or by query;
    recorded through the pipeline (the batch finishes with its last line)."""
    from portal.batches.services import batch_line_record_outcome

    line = (
        BatchLine.objects.select_related("batch", "batch__merchant", "batch__organisation").filter(pk=line_id).first()
    )
    if line is None or line.status != LineStatus.SENT or line.batch.kind != BATCH_KIND:
        return None
    merchant = _line_merchant(line.batch, line)
    ledger = Transaction.objects.filter(merchant=merchant, order_id=line.order_id).first()
    if ledger is not None and ledger.status != TxnStatus.PENDING:
        status = LineStatus.SUCCEEDED if ledger.status == TxnStatus.SUCCESS else LineStatus.FAILED
        result = {
            "respCode": ledger.resp_code,
            "respMsg": ledger.resp_msg,
            "queryId": ledger.query_id or "",
            "settleDate": ledger.settle_date.strftime("%m%d"),
            "traceNo": ledger.trace_no,
            "traceTime": ledger.trace_time,
        }
        batch_line_record_outcome(line_id=line.pk, status=status, result=result)
        return status
    if not line.data.get("txnTime"):
        return None
    txn_type, txn_time = _prepare(line)
    answer = gateway.query(mer_id=merchant.code, order_id=line.order_id, txn_time=txn_time, txn_type=txn_type)
    final = _outcome(line.batch, line, merchant, txn_type, txn_time, answer)
    if final is None:
        return None
    batch_line_record_outcome(line_id=line.pk, status=final.status, result=final.result)
    return final.status


def batch_lines_reconcile(*, cutoff) -> int:
    """Confirm refund batch lines still ``sent`` since before ``cutoff`` (the periodic job)."""
    count = 0
    stale = BatchLine.objects.filter(batch__kind=BATCH_KIND, status=LineStatus.SENT, updated_at__lt=cutoff)
    for pk in stale.values_list("pk", flat=True)[:5000]:
        try:
            batch_line_confirm(line_id=pk)
        except Exception:
            logger.exception("refunds: confirming batch line %s failed", pk)
        count += 1
    return count


# --- result file ---------------------------------------------------------------------------------------


def _rows(batch, lines, totals: dict):
    for line in lines:
        request = dict(line.data or {})
        if request:  # a parsed line: its order id, amount and currency (not kept in ``data``)
            request = {"orderId": line.order_id, "txnAmt": str(line.amount), "currencyCode": "156", **request}
        result = dict(line.result or {})
        if line.status == LineStatus.INVALID:
            result = {"respCode": "", "respMsg": render_message(line.error_code, line.error_params, _KIND)}
        elif line.status not in (LineStatus.SUCCEEDED, LineStatus.FAILED):
            result.setdefault("respMsg", str(LineStatus(line.status).label))
        succeeded = line.status == LineStatus.SUCCEEDED
        totals["total_amount"] += line.amount
        totals["total_count"] += 1
        if succeeded:
            totals["success_amount"] += line.amount
            totals["success_count"] += 1
        yield ResultRow(line.line_no, request, line.amount, succeeded, result)


def refund_write_result(batch, fmt, lines, out) -> None:
    """The result file in the upload's format, in the uploader's language."""
    from django.conf import settings

    language = getattr(batch.uploaded_by, "language", "") or settings.LANGUAGE_CODE
    # Totals come from the batch (exact counters) for the text header; rows stream.
    ok = BatchLine.objects.filter(batch_id=batch.pk, status=LineStatus.SUCCEEDED)
    from django.db.models import Count, Sum

    agg = ok.aggregate(n=Count("pk"), s=Sum("amount"))
    totals = {
        "total_amount": batch.total_amount,
        "total_count": batch.total_lines,
        "success_amount": agg["s"] or 0,
        "success_count": agg["n"] or 0,
    }
    scratch = {"total_amount": 0, "total_count": 0, "success_amount": 0, "success_count": 0}
    with translation.override(language):
        if fmt == "xlsx":
            write_xlsx_result(_rows(batch, lines, scratch), out, totals=totals, lang=language)
        else:
            write_text_result(_rows(batch, lines, scratch), out, totals=totals, lang=language)


_KIND = BatchKind(
    code=BATCH_KIND,
    label=_("Batch refund"),
    parse=refund_parse,
    validate_chunk=refund_validate_chunk,
    process_line=refund_process_line,
    recover_line=refund_recover_line,
    write_result=refund_write_result,
    approval_kind="refund.batch",
    order_id_family="refund",
    view_perm=Perm.REFUNDS_VIEW,
    upload_perm=Perm.BATCHES_UPLOAD,
    messages=MESSAGES,
    columns=COLUMNS,
    sample_columns=("origQryId", "origOrderId", "reason"),
    # An acquirer may name one merchant, or none: the file names each line's merchant (merId).
    requires_merchant=False,
    description=_(
        "Batch refund file (批量退货): text or Excel; see the format page. An acquirer may leave the merchant "
        "empty: the file is then for several of its merchants and every line names its merchant (merId)."
    ),
    bulk=BULK,
)


def refund_batch_kind() -> BatchKind:
    return _KIND
