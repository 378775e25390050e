"""Parsers never crash the pipeline (F8) and nothing of the file reaches the logs (C4)."""

from __future__ import annotations

import io
import logging
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from portal.batches.readers import iter_text_lines
from portal.batches.registry import register_batch_kind
from portal.batches.services import batch_upload

from .conftest import demo_parse, text_file

pytestmark = pytest.mark.django_db


@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=2000))
def test_reader_and_demo_parser_accept_any_bytes(data):
    items = list(demo_parse(io.BufferedReader(io.BytesIO(data)), "text", None))
    assert all(item.__class__.__name__ in {"ParsedLine", "LineError", "FileError"} for item in items)
    assert len(list(iter_text_lines(io.BufferedReader(io.BytesIO(data))))) == len(items)


def test_a_crashing_parser_fails_the_file_closed_and_logs_no_content(
    operator_a, demo_kind, django_capture_on_commit_callbacks, caplog
):
    def crash(stream, fmt, context):
        yield from demo_parse(stream, fmt, context)
        raise RuntimeError("6222021234567890128 secret content")

    register_batch_kind(replace(demo_kind, parse=crash))
    with caplog.at_level(logging.DEBUG), django_capture_on_commit_callbacks(execute=True):
        batch = batch_upload(actor=operator_a, kind="demo", uploaded_file=text_file(["C6222021234567890128|100"]))
    batch.refresh_from_db()
    assert (batch.status, batch.error_code, batch.total_lines) == ("invalid", "file_unreadable", 0)
    assert "6222021234567890128" not in caplog.text
    assert "RuntimeError" in caplog.text
