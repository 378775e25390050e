"""Run the benchmarks of issue 3: ``python bench/run.py query|export|notify|all [--rows N]``.

Each benchmark prints one ``RESULT <name> key=value ...`` line on stdout (progress goes to stderr).
``--rows`` sets the ledger size (default 10,000,000, the issue's size); a smaller value uses its own
database ``portal_bench_<rows>`` so that a quick smoke run leaves the full data alone.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common

BENCHMARKS = ("query", "export", "notify")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("benchmark", choices=(*BENCHMARKS, "recon_files", "all"))
    parser.add_argument("--rows", type=int, default=common.FULL_ROWS, help="ledger rows (default 10,000,000)")
    parser.add_argument("--notifications", type=int, default=2000, help="notifications to post (notify)")
    args = parser.parse_args(argv)
    names = BENCHMARKS if args.benchmark == "all" else (args.benchmark,)
    for name in names:
        if name == "recon_files":  # issue 5: its own database; --rows is the merchant day's size (default 1,000,000)
            from bench import recon_files

            recon_files.main(None if args.rows == common.FULL_ROWS else args.rows)
        elif name == "query":
            from bench import query

            query.main(args.rows)
        elif name == "export":
            from bench import export

            export.main(args.rows)
        else:
            from bench import notify

            notify.main(args.rows, args.notifications)
    return 0


if __name__ == "__main__":
    sys.exit(main())
