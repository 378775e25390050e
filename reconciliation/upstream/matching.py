"""Matching a run's upstream records against the ledger, set-based: a few UPDATE … FROM and INSERT … SELECT
statements (PostgreSQL and SQLite ≥ 3.33), never a Python loop over rows.

1. by queryId within the merchant; 2. the rest by merchant + order id + transmission time (``trace_time``).
Then the discrepancies: upstream only (长款); amount differs, status differs (the file lists settled transactions,
so a ledger row that is not ``success`` differs) and fee differs (only where the ledger side has a fee: computed in
SQL with the default provider on PostgreSQL, else loaded into ``LedgerFee`` from ``RECON_LEDGER_FEE_PROVIDER``), those
three in one pass over the matched records; and ledger only (短款: successful ledger rows of the
merchant's settlement day that no record matched).
"""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.db import connection
from django.utils.module_loading import import_string

from payments.choices import TxnStatus
from payments.models import Transaction
from reconciliation.choices import FeeReturn
from reconciliation.ledger import FeeBook, fee_return_rule

from . import fees as fees_module
from .choices import MATCHED, DiscrepancyClass, DiscrepancyStatus, RecordKind
from .models import Discrepancy, LedgerFee, ReconciliationRun, UpstreamRecord

_REC = UpstreamRecord._meta.db_table
_TXN = Transaction._meta.db_table
_DISC = Discrepancy._meta.db_table
_FEE = LedgerFee._meta.db_table

_INSERT = (
    f"INSERT INTO {_DISC} (run_id, cls, merchant_id, settle_date, query_id, order_id, transaction_id, record_id, "
    "ledger_amount, upstream_amount, ledger_fee, upstream_fee, ledger_status, status, resolution, reason, "
    "created_at, updated_at) "
)


#: The provider of ledger-side fees when ``RECON_LEDGER_FEE_PROVIDER`` is not set: the settlement fee rules.
DEFAULT_FEE_PROVIDER = "reconciliation.upstream.fees.ledger_fees"
_FEE_CHUNK = 5000


def _fee_provider_path() -> str:
    return getattr(settings, "RECON_LEDGER_FEE_PROVIDER", DEFAULT_FEE_PROVIDER)


def load_ledger_fees(run: ReconciliationRun, provider=None) -> bool:
    """Load the ledger-side fees of the run's merchant day from the configured provider; False when none.

    ``RECON_LEDGER_FEE_PROVIDER`` is the dotted path of a callable ``(merchant, settle_date)`` returning a mapping
    or an iterable of ``(transaction id, signed fee)`` pairs; unset means the settlement fee rules
    (:data:`DEFAULT_FEE_PROVIDER`), an empty string turns the fee comparison off. Pairs are streamed into
    ``LedgerFee`` (``COPY`` on PostgreSQL), never held all at once. ``provider`` replaces the configured one (the
    SQL fee path loads only the rows its SQL leaves to Python).
    """
    if provider is None:
        path = _fee_provider_path()
        if not path:
            return False
        provider = import_string(path)
    fees = provider(run.merchant, run.settle_date) or ()
    pairs = fees.items() if hasattr(fees, "items") else fees
    postgres = connection.vendor == "postgresql"
    batch: list[tuple[int, int, int]] = []
    loaded = False

    def flush() -> None:
        # The provider may read the ledger through a server-side cursor of this connection: a COPY must never be
        # open while it fetches, so each chunk has its own short COPY.
        if postgres:
            with connection.connection.cursor() as cursor:
                with cursor.copy(f"COPY {_FEE} (run_id, transaction_id, fee) FROM STDIN") as copy:
                    for row in batch:
                        copy.write_row(row)
        else:
            LedgerFee.objects.bulk_create([LedgerFee(run_id=r, transaction_id=t, fee=f) for r, t, f in batch])
        batch.clear()

    for txn_id, fee in pairs:
        loaded = True
        batch.append((run.pk, txn_id, int(fee)))
        if len(batch) >= _FEE_CHUNK:
            flush()
    if batch:
        flush()
    return loaded


#: The ledger columns the comparison reads (``t``), fee layers included (``fees.ledger_fee_layers``).
_LEDGER_COLUMNS = ("id", "amount", "status", "txn_type", "card_type", "merchant_id", "orig_id", "settle_date")


def _matched_source(where: str, *, joins: str = "") -> str:
    """``FROM`` text of the run's matched records ``r`` (filtered by ``where``) each with its ledger row ``t``, then
    ``joins`` (which may read ``r`` and ``t``).

    On PostgreSQL the ledger rows are read as the merchant's settlement day through ``(merchant, settle_date)``
    (``OFFSET 0``: a fenced subquery, so the planner hash joins it with the records instead of looking each record's
    row up by primary key, a random index probe per record); a record linked to a row of another day (the matching's
    own passes) finds it by primary key, probed only for those records (the ``CASE`` key is NULL otherwise: no index
    descent). Each record meets exactly its one row, as with a plain join. Elsewhere (SQLite): a plain join.
    """
    if connection.vendor != "postgresql":
        return f"{_REC} r JOIN {_TXN} t ON t.id = r.transaction_id{joins} WHERE {where}"
    day_columns = ", ".join(_LEDGER_COLUMNS)
    picked = ", ".join(f"CASE WHEN d.id IS NULL THEN e.{c} ELSE d.{c} END AS t_{c}" for c in _LEDGER_COLUMNS)
    unpacked = ", ".join(f"r.t_{c} AS {c}" for c in _LEDGER_COLUMNS)
    return (
        f"(SELECT r.id, r.query_id, r.order_id, r.amount, r.merchant_fee, r.run_id, {picked} FROM {_REC} r "
        f"LEFT JOIN (SELECT {day_columns} FROM {_TXN} WHERE merchant_id = %(merchant)s AND settle_date = %(day)s "
        f"OFFSET 0) d ON d.id = r.transaction_id "
        f"LEFT JOIN {_TXN} e ON e.id = CASE WHEN d.id IS NULL THEN r.transaction_id END "
        f"WHERE {where} AND r.transaction_id IS NOT NULL) r CROSS JOIN LATERAL (SELECT {unpacked}) t{joins}"
    )


def _compared_sql(*, sql_fees: bool, loaded_fees: bool, rates: dict) -> str:
    """The matched records with what the comparison reads: ``r_id``, ``query_id``, ``order_id``, ``r_amount``,
    ``r_fee``, ``t_id``, ``t_amount``, ``t_status`` and ``l_fee`` (the ledger fee, NULL: none to compare)."""
    select = (
        "r.id AS r_id, r.query_id, r.order_id, r.amount AS r_amount, r.merchant_fee AS r_fee, t.id AS t_id, "
        "t.amount AS t_amount, t.status AS t_status"
    )
    where = "r.run_id = %(run)s AND r.kind = %(zm)s"
    if sql_fees:
        layers = fees_module.ledger_fee_layers(
            select=select,
            source=_matched_source(where, joins=f" LEFT JOIN {_TXN} o ON o.id = t.orig_id"),
            day_param="day",
            rates=rates,
            proportional_param="proportional",
        )
        if not loaded_fees:
            return f"SELECT y.*, y.sql_fee AS l_fee FROM ({layers}) y"
        return (
            f"SELECT y.*, COALESCE(y.sql_fee, f.fee) AS l_fee FROM ({layers}) y "
            f"LEFT JOIN {_FEE} f ON f.run_id = %(run)s AND f.transaction_id = y.t_id"
        )
    if not loaded_fees:
        return f"SELECT {select}, CAST(NULL AS bigint) AS l_fee FROM {_matched_source(where)}"
    return (
        f"SELECT x.*, f.fee AS l_fee FROM (SELECT {select} FROM {_matched_source(where)}) x "
        f"LEFT JOIN {_FEE} f ON f.run_id = %(run)s AND f.transaction_id = x.t_id"
    )


def _compare(cursor, params: dict, *, sql_fees: bool, loaded_fees: bool) -> None:
    """One pass over the matched records for the amount, status and fee classes (in that order, each by record):
    every record meets the three checks of a three-row table; a record may differ in more than one."""
    cls = (
        f"CASE c.k WHEN 1 THEN '{DiscrepancyClass.AMOUNT}' WHEN 2 THEN '{DiscrepancyClass.STATUS}' "
        f"ELSE '{DiscrepancyClass.FEE}' END"
    )
    hit = (
        "(c.k = 1 AND x.t_amount <> x.r_amount) OR (c.k = 2 AND x.t_status <> %(success)s) "
        "OR (c.k = 3 AND x.r_fee IS NOT NULL AND x.l_fee IS NOT NULL AND x.l_fee <> x.r_fee)"
    )
    rates = FeeBook().class_rates(params["merchant"]) if sql_fees else {}
    cursor.execute(
        _INSERT + f"SELECT %(run)s, {cls}, %(merchant)s, %(settle)s, x.query_id, x.order_id, x.t_id, x.r_id, "
        "x.t_amount, x.r_amount, CASE WHEN c.k = 3 THEN x.l_fee END, x.r_fee, x.t_status, %(open)s, '', '', "
        f"%(created)s, %(created)s FROM ({_compared_sql(sql_fees=sql_fees, loaded_fees=loaded_fees, rates=rates)}) x "
        f"JOIN (SELECT 1 AS k UNION ALL SELECT 2 UNION ALL SELECT 3) c ON {hit} ORDER BY c.k, x.r_id",
        params,
    )


def match_run(run: ReconciliationRun, *, now: datetime) -> dict[str, dict[str, int]]:
    """Link records to ledger rows, create the run's discrepancies, and return the totals per class
    (``run.record_count`` and ``run.amount_total`` hold the totals of the run's detail records, as loaded).

    With the default fee provider on PostgreSQL the ledger fees are computed in the comparison's own SQL
    (``fees.ledger_fee_layers``); ``LedgerFee`` then holds only the rare rows SQL leaves to Python.
    """
    path = _fee_provider_path()
    sql_fees = path == DEFAULT_FEE_PROVIDER and fees_module.sql_fees_available()
    if sql_fees:
        loaded_fees = load_ledger_fees(run, fees_module.python_only_fees)
    else:
        loaded_fees = load_ledger_fees(run)
    created = connection.ops.adapt_datetimefield_value(now)
    settle = connection.ops.adapt_datefield_value(run.settle_date)
    zm = RecordKind.ZM
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {_REC} SET transaction_id = t.id FROM {_TXN} t "
            f"WHERE {_REC}.run_id = %s AND {_REC}.kind = %s AND {_REC}.transaction_id IS NULL "
            f"AND {_REC}.query_id <> '' "
            f"AND t.query_id = {_REC}.query_id AND t.merchant_id = %s",
            [run.pk, zm, run.merchant_id],
        )
        cursor.execute(
            f"UPDATE {_REC} SET transaction_id = t.id FROM {_TXN} t "
            f"WHERE {_REC}.run_id = %s AND {_REC}.kind = %s AND {_REC}.transaction_id IS NULL "
            f"AND {_REC}.order_id <> '' AND t.merchant_id = %s AND t.order_id = {_REC}.order_id "
            f"AND t.trace_time = {_REC}.trans_time",
            [run.pk, zm, run.merchant_id],
        )
        common = "%s, %s, %s, %s, "  # run_id, cls, merchant_id, settle_date
        tail = "%s, '', '', %s, %s"  # status, resolution, reason, created_at, updated_at
        open_ = DiscrepancyStatus.OPEN
        cursor.execute(
            _INSERT + f"SELECT {common} r.query_id, r.order_id, NULL, r.id, NULL, r.amount, NULL, r.merchant_fee, '', "
            f"{tail} FROM {_REC} r WHERE r.run_id = %s AND r.kind = %s AND r.transaction_id IS NULL ORDER BY r.id",
            [run.pk, DiscrepancyClass.UPSTREAM_ONLY, run.merchant_id, settle, open_, created, created, run.pk, zm],
        )
        params = {
            "run": run.pk,
            "zm": zm,
            "merchant": run.merchant_id,
            "settle": settle,
            "open": open_,
            "created": created,
            "success": TxnStatus.SUCCESS,
        }
        params["day"] = settle  # the settlement day: the ledger rows the comparison reads, and its SQL fees
        if sql_fees:
            params["proportional"] = fee_return_rule() == FeeReturn.PROPORTIONAL
        _compare(cursor, params, sql_fees=sql_fees, loaded_fees=loaded_fees)
        cursor.execute(
            _INSERT + f"SELECT {common} COALESCE(t.query_id, ''), t.order_id, t.id, NULL, t.amount, NULL, NULL, NULL, "
            f"t.status, {tail} FROM {_TXN} t WHERE t.merchant_id = %s AND t.settle_date = %s AND t.status = %s "
            f"AND NOT EXISTS (SELECT 1 FROM {_REC} r WHERE r.run_id = %s AND r.transaction_id = t.id) ORDER BY t.id",
            [
                run.pk,
                DiscrepancyClass.LEDGER_ONLY,
                run.merchant_id,
                settle,
                open_,
                created,
                created,
                run.merchant_id,
                settle,
                TxnStatus.SUCCESS,
                run.pk,
            ],
        )
        totals: dict[str, dict[str, int]] = {}
        cursor.execute(
            f"SELECT cls, COUNT(*), COALESCE(SUM(COALESCE(upstream_amount, ledger_amount)), 0) FROM {_DISC} "
            "WHERE run_id = %s GROUP BY cls",
            [run.pk],
        )
        for cls, count, amount in cursor.fetchall():
            totals[cls] = {"count": int(count), "amount": int(amount)}
        # Matched: the run's detail records (counted as they were loaded) less those found upstream only and those
        # that differ (a record may differ in several classes: once). Read from the discrepancies, not the records.
        cursor.execute(
            f"SELECT COUNT(*), COALESCE(SUM(x.amount), 0) FROM (SELECT record_id, MAX(upstream_amount) AS amount "
            f"FROM {_DISC} WHERE run_id = %s AND cls IN (%s, %s, %s) GROUP BY record_id) x",
            [run.pk, DiscrepancyClass.AMOUNT, DiscrepancyClass.STATUS, DiscrepancyClass.FEE],
        )
        differing, differing_amount = cursor.fetchone()
    for cls in DiscrepancyClass.values:
        totals.setdefault(cls, {"count": 0, "amount": 0})
    upstream_only = totals[DiscrepancyClass.UPSTREAM_ONLY]
    totals[MATCHED] = {
        "count": run.record_count - upstream_only["count"] - int(differing),
        "amount": run.amount_total - upstream_only["amount"] - int(differing_amount),
    }
    return totals
