"""A second database connection working beside the caller's, for the set-based steps of a large file.

PostgreSQL runs one connection's statement on one core: a step split in two halves, one on the caller's
connection and one on a ``SideConnection``, uses both cores of the machine. The side connection is a
thread's own (Django's connections are per thread) and works in a transaction of its own, so it sees
only what the caller has committed, and the caller sees its work once it committed.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import connection, transaction


def halves(span: tuple[int, int] | None) -> tuple[int, int, int] | None:
    """``(first, middle, last)`` line numbers of a file whose lines ``span`` (first, last) are enough to be
    worth two connections (``BATCH_BULK_SPLIT_LINES``): one takes first to middle − 1, the other middle to
    last. None for a smaller file."""
    if span is None or span[1] - span[0] + 1 < settings.BATCH_BULK_SPLIT_LINES:
        return None
    return span[0], (span[0] + span[1] + 1) // 2, span[1]


class SideConnection(threading.Thread):
    """Runs ``work(cursor)`` on a connection of its own, started at once.

    Without ``hold`` its transaction commits as soon as ``work`` returns. With ``hold`` it waits, once
    ``work`` returned, until the caller says ``release(commit=...)``: the caller then decides whether
    both halves are kept, and the side commits before the caller does. ``result()`` waits for the end
    and returns what ``work`` returned, or raises what it raised."""

    def __init__(self, work: Callable[[Any], Any], *, hold: bool = False) -> None:
        super().__init__(name="batch-side-connection", daemon=True)
        self.work, self.hold = work, hold
        self._done_work = threading.Event()
        self._released = threading.Event()
        self._commit = False
        self._value: Any = None
        self._error: BaseException | None = None
        self.start()

    def run(self) -> None:
        try:
            with transaction.atomic():
                with connection.cursor() as cursor:
                    self._value = self.work(cursor)
                if self.hold:
                    self._done_work.set()
                    self._released.wait()
                    if not self._commit:
                        transaction.set_rollback(True)
        except BaseException as exc:  # handed to the caller by result()
            self._error = exc
        finally:
            self._done_work.set()
            connection.close()

    def wait_work(self) -> BaseException | None:
        """(``hold``) Wait until ``work`` returned or failed; its exception, if any."""
        self._done_work.wait()
        return self._error

    def release(self, *, commit: bool) -> None:
        """(``hold``) Commit or roll back the side's transaction."""
        self._commit = commit
        self._released.set()

    def result(self) -> Any:
        self._released.set()  # a held side nobody released rolls back
        self.join()
        if self._error is not None:
            raise self._error
        return self._value
