"""One background detail download, run as the export worker would: ``export_request`` then ``export_run``.

Run in its own process by ``bench/export.py`` so that its peak memory (VmHWM) is the file writer's alone:
``python bench/export_job.py <db_name> <csv_utf8|csv_gbk|xlsx> <date_from> <date_to>``; prints one JSON line.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common


def main(db_name: str, fmt: str, date_from: str, date_to: str) -> None:
    common.django_setup(db_name)
    from payments.models import ExportJob
    from payments.services import export_request, export_run

    user = common.bench_user(common.ACQUIRER_USER, merchant=False)
    params = {"date_from": date_from, "date_to": date_to, "sort": "-txn_time"}
    job = export_request(actor=user, params=params, fmt=fmt, description={"bench": fmt})
    began = time.perf_counter()
    status = export_run(job_id=job.pk)
    seconds = time.perf_counter() - began
    job = ExportJob.objects.get(pk=job.pk)
    out = {
        "status": status,
        "seconds": seconds,
        "rows": job.rows_done,
        "size": job.size,
        "path": str(job.path),
        "peak_mb": common.peak_rss_mb(),
    }
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:5])
