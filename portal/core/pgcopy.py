"""Reading ``COPY … TO STDOUT`` from PostgreSQL a batch of rows at a time.

psycopg's ``Copy.read()`` runs a generator through the connection's wait loop for every row (~0.8 µs a row, as much
as the backend spends producing a short row). Rows libpq has already received are taken here straight from it
(``PGconn.get_copy_data`` without blocking); only when none is buffered does psycopg's own ``read()`` wait for the
next one, so waiting, cancellation and errors stay psycopg's.
"""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
from psycopg import pq


def copy_out_batches(cursor: psycopg.Cursor, statement, params=None, *, size: int = 1024) -> Iterator[list]:
    """The rows of ``COPY (…) TO STDOUT`` (``statement``) in lists of up to ``size`` buffers, one row each."""
    with cursor.copy(statement, params) as copy:
        get = cursor.connection.pgconn.get_copy_data
        batch: list = []
        while True:
            append = batch.append
            for _ in range(size - len(batch)):  # the rows libpq holds, up to a full batch
                nbytes, data = get(1)
                if nbytes <= 0:
                    break
                append(data)
            else:
                yield batch
                batch = []
                continue
            if nbytes < 0:  # the COPY ended here: take its result, as psycopg's read() would have
                _finish(cursor.connection)
                break
            if not (data := copy.read()):  # nothing buffered: psycopg waits for the next row, or the end
                break
            append(data)
        if batch:
            yield batch


def _finish(connection: psycopg.Connection) -> None:
    """Take the results that follow the COPY's last row; raise the error one of them holds."""
    error = None
    while (result := connection.pgconn.get_result()) is not None:
        if result.status != pq.ExecStatus.COMMAND_OK and error is None:
            error = psycopg.errors.error_from_result(result, encoding=connection.info.encoding)
    if error is not None:
        raise error
