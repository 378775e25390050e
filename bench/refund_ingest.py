"""``refund_ingest``: a text refund file from upload to ``validated`` against the ledger, vs PostgreSQL COPY.

``python bench/refund_ingest.py [--rows 1000000] [--ledger-rows 10000000]`` prints
``RESULT refund_ingest rows=... validate_s=... copy_s=... ratio=... peak_mb=...`` (goal: ratio ≤ 3,
peak_mb ≤ 300 for every process: the Django process and its PostgreSQL backend). See bench/README.md.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common, refund_common

# The baseline table: the file's columns, with as many indexes as the pipeline maintains for a line
# (primary key, unique line number, unique order id, the original's reference).
BARE_DDL = """
DROP TABLE IF EXISTS bench_refund_copy;
CREATE UNLOGGED TABLE bench_refund_copy (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    order_id varchar(32) NOT NULL,
    txn_amt bigint NOT NULL,
    orig_qry_id varchar(21) NOT NULL
);
CREATE UNIQUE INDEX bench_refund_copy_order ON bench_refund_copy (order_id);
CREATE INDEX bench_refund_copy_orig ON bench_refund_copy (orig_qry_id);
"""


def copy_seconds(db_name: str, path: Path) -> float:
    """COPY the file's detail lines (after the header and title lines) into the bare table; seconds."""
    with common.pg_connect(db_name) as conn:
        conn.execute("DROP TABLE IF EXISTS bench_refund_copy")
        conn.execute(BARE_DDL.replace("UNLOGGED ", ""))
        conn.execute("CHECKPOINT")  # as before the pipeline's run (refund_common.checkpoint)
        began = time.perf_counter()
        with conn.cursor() as cur, open(path, "rb") as fh:
            fh.readline()
            fh.readline()
            with cur.copy("COPY bench_refund_copy (order_id, txn_amt, orig_qry_id) FROM STDIN (DELIMITER '|')") as cp:
                while block := fh.read(1 << 20):
                    cp.write(block)
        elapsed = time.perf_counter() - began
        count = conn.execute("SELECT count(*) FROM bench_refund_copy").fetchone()[0]
        conn.execute("DROP TABLE bench_refund_copy")
    common.log(f"COPY of {count:,} lines: {elapsed:.2f} s")
    return elapsed


def main(rows: int, ledger_rows: int = common.FULL_ROWS) -> str:
    db_name = common.database_name(ledger_rows)
    common.ensure_database(db_name)
    common.ensure_rows(db_name, ledger_rows)
    user_id, merchant_id = refund_common.prepare(db_name)
    originals = refund_common.eligible_originals(db_name, merchant_id)
    path = common.VAR / db_name / f"refund_ingest_{rows}.txt"
    tag = refund_common.run_tag()
    count, total = refund_common.write_text_file(path, refund_common.plan_lines(originals, rows, tag))
    common.log(f"{path.name}: {count:,} lines over {len(originals):,} payments, {path.stat().st_size / 1e6:.1f} MB")
    copy_s = copy_seconds(db_name, path)
    answer = refund_common.measure(db_name, path, user_id=user_id)
    common.log(f"pipeline: {answer}")
    if answer["status"] != "validated" or answer["valid_lines"] != count:
        raise SystemExit(f"the batch did not validate every line: {answer}")
    path.unlink()
    peak = max(answer["peak_mb"], answer["backend_peak_mb"])
    return common.result(
        "refund_ingest",
        rows=count,
        validate_s=answer["seconds"],
        copy_s=copy_s,
        ratio=answer["seconds"] / copy_s,
        peak_mb=peak,
        django_peak_mb=answer["peak_mb"],
        pg_backend_peak_mb=answer["backend_peak_mb"],
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="lines of the refund file")
    parser.add_argument("--ledger-rows", type=int, default=common.FULL_ROWS, help="ledger rows (database)")
    args = parser.parse_args()
    main(args.rows, args.ledger_rows)
