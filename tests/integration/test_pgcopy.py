"""``portal.core.pgcopy.copy_out_batches``: every row once and in order, errors raised, the connection left usable.

Rows come either from what libpq already holds or, when nothing is buffered, through psycopg's own ``read()``; the
end of the COPY is met on both roads (a fast statement is read whole from the buffer, a slow one ends in ``read()``).
"""

from __future__ import annotations

import psycopg
import pytest
from django.db import connection

from portal.core.pgcopy import copy_out_batches

pytestmark = pytest.mark.django_db(transaction=True)


def rows(statement: str, size: int) -> list[list[bytes]]:
    with connection.cursor() as cursor:
        return [[bytes(row) for row in batch] for batch in copy_out_batches(cursor.cursor, statement, size=size)]


def still_usable() -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 41 + 1")
        return cursor.fetchone()[0] == 42


@pytest.mark.parametrize(("count", "size", "sizes"), [(2500, 1000, [1000, 1000, 500]), (3, 1, [1, 1, 1]), (0, 5, [])])
def test_every_row_once_in_order_in_batches_of_the_size(count, size, sizes):
    batches = rows(f"COPY (SELECT g, 'row ' || g FROM generate_series(1, {count}) g ORDER BY g) TO STDOUT", size)
    assert [len(batch) for batch in batches] == sizes
    assert [row for batch in batches for row in batch] == [f"{g}\trow {g}\n".encode() for g in range(1, count + 1)]
    assert still_usable()


def test_rows_that_arrive_slowly_are_waited_for():
    statement = "COPY (SELECT g FROM generate_series(1, 6) g, LATERAL pg_sleep(0.02) ORDER BY g) TO STDOUT"
    assert rows(statement, 4) == [[b"1\n", b"2\n", b"3\n", b"4\n"], [b"5\n", b"6\n"]]
    assert still_usable()


def test_an_error_after_some_rows_is_raised_and_the_connection_stays_usable():
    statement = "COPY (SELECT 1 / (3000 - g) FROM generate_series(1, 5000) g ORDER BY g) TO STDOUT"
    seen = []
    with pytest.raises(psycopg.errors.DivisionByZero), connection.cursor() as cursor:
        for batch in copy_out_batches(cursor.cursor, statement, size=100):
            seen.extend(batch)
    assert len(seen) < 3000
    assert still_usable()


def test_a_reader_that_stops_early_leaves_the_connection_usable():
    with connection.cursor() as cursor:
        batches = copy_out_batches(cursor.cursor, "COPY (SELECT generate_series(1, 100000)) TO STDOUT", size=10)
        assert [bytes(row) for row in next(batches)] == [f"{g}\n".encode() for g in range(1, 11)]
        batches.close()
    assert still_usable()
