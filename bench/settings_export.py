"""Settings of the ``export`` benchmark's server: the portal's, with the streaming limit raised.

``TRANSACTIONS_EXPORT_STREAM_LIMIT`` comes from ``BENCH_EXPORT_STREAM_LIMIT`` so that the 1,000,000-row
download streams through HTTP instead of becoming a background job.
"""

import os

from portal.settings import *  # noqa: F403

TRANSACTIONS_EXPORT_STREAM_LIMIT = int(os.environ["BENCH_EXPORT_STREAM_LIMIT"])
