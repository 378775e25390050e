"""``refund_xlsx``: an Excel refund file from upload to ``validated``, vs python-calamine reading it alone.

``python bench/refund_xlsx.py [--rows 100000] [--ledger-rows 10000000]`` prints
``RESULT refund_xlsx rows=... validate_s=... calamine_s=... ratio=... peak_mb=...`` (goal: ratio ≤ 2).
See bench/README.md.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common, refund_common


def write_xlsx(path: Path, planned) -> int:
    """First sheet: the English header row, then ``orderId`` / ``txnAmt`` (yuan, a number) / ``origQryId``
    (text) per line, written with openpyxl in write-only mode."""
    from openpyxl import Workbook

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("refunds")
    sheet.append(["orderId", "txnAmt", "origQryId"])
    count = 0
    for oid, fen, qid in planned:
        sheet.append([oid, fen / 100, qid])
        count += 1
    workbook.save(path)
    return count


def calamine_seconds(path: Path, runs: int = 3) -> float:
    """python-calamine alone: open the workbook and read every row of the first sheet (median of runs)."""
    from python_calamine import CalamineWorkbook

    samples = []
    for _ in range(runs):
        began = time.perf_counter()
        workbook = CalamineWorkbook.from_path(str(path))
        rows = sum(1 for _row in workbook.get_sheet_by_index(0).iter_rows())
        workbook.close()
        samples.append(time.perf_counter() - began)
    common.log(f"calamine read {rows:,} rows: {samples}")
    return statistics.median(samples)


def main(rows: int, ledger_rows: int = common.FULL_ROWS) -> str:
    db_name = common.database_name(ledger_rows)
    common.ensure_database(db_name)
    common.ensure_rows(db_name, ledger_rows)
    user_id, merchant_id = refund_common.prepare(db_name)
    originals = refund_common.eligible_originals(db_name, merchant_id)
    path = common.VAR / db_name / f"refund_xlsx_{rows}.xlsx"
    count = write_xlsx(path, refund_common.plan_lines(originals, rows, refund_common.run_tag()))
    common.log(f"{path.name}: {count:,} lines, {path.stat().st_size / 1e6:.1f} MB")
    calamine_s = calamine_seconds(path)
    answer = refund_common.measure(db_name, path, user_id=user_id)
    common.log(f"pipeline: {answer}")
    if answer["status"] != "validated" or answer["valid_lines"] != count:
        raise SystemExit(f"the batch did not validate every line: {answer}")
    path.unlink()
    return common.result(
        "refund_xlsx",
        rows=count,
        validate_s=answer["seconds"],
        calamine_s=calamine_s,
        ratio=answer["seconds"] / calamine_s,
        peak_mb=max(answer["peak_mb"], answer["backend_peak_mb"]),
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000, help="lines of the Excel file")
    parser.add_argument("--ledger-rows", type=int, default=common.FULL_ROWS, help="ledger rows (database)")
    args = parser.parse_args()
    main(args.rows, args.ledger_rows)
