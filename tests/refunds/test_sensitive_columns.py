"""No sensitive authentication data in batch files nor in the database (security.md C3).

PCI DSS 3.3.1 and the acquiring rules forbid keeping the card verification code, track data, the PIN
(block) or the expiry date. A batch refund file whose header names such a column is refused as a whole
with the parser's file-level ``unknown_column`` error, and nothing of its content is kept readable: no
batch line, no database value, no log line, only the upload encrypted at rest. And no model field or
table column of the project is named after such data.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest
from django.apps import apps
from django.conf import settings
from django.db import connection

from portal.batches import storage
from portal.batches.models import Batch, BatchLine

from .conftest import text_file, upload, xlsx_file

pytestmark = pytest.mark.django_db

SENSITIVE_HEADERS = [
    "CVV",
    "cvv2",
    "CVN2",
    "CVC2",
    "track2",
    "Track 2 data",
    "二磁道信息",
    "PIN",
    "PIN block",
    "密码",
    "有效期",
    "卡有效期",
    "expiry",
    "安全码",
]
# What the sensitive cell holds: track 2 data with a Luhn-valid test card number. Found nowhere but in the file.
CARD = "4000056655665556"
SENTINEL = f"{CARD}=29121010000012300000"
ORDER_ID = "RFSAD0000001"


def _text(header: str, query_id: str, encoding: str):
    lines = ["5.0.0|100|1||", f"orderId|txnAmt|origQryId|{header}", f"{ORDER_ID}|100|{query_id}|{SENTINEL}"]
    return text_file(lines, encoding=encoding)


def _xlsx(header: str, query_id: str):
    return xlsx_file([("orderId", "txnAmt", "origQryId", header), (ORDER_ID, "1.00", query_id, SENTINEL)])


def _clear_values_in_database() -> list[str]:
    """Every table of every model, every concrete column, as text: where the sentinel would show if stored."""
    found = []
    for model in apps.get_models():
        if model._meta.proxy or not model._meta.managed:
            continue
        columns = [f.attname for f in model._meta.concrete_fields]
        for row in model._default_manager.values_list(*columns):
            text = " ".join(str(v) for v in row)
            if CARD in text or ORDER_ID in text:
                found.append(f"{model._meta.label}: {text[:200]}")
    return found


def _clear_bytes_under(root: Path, upload: bytes) -> list[str]:
    """Files under ``root`` holding the card, the order id or the upload itself (a workbook is compressed)."""
    needles = [CARD.encode(), ORDER_ID.encode(), upload]
    return [str(p) for p in root.rglob("*") if p.is_file() and any(n in p.read_bytes() for n in needles)]


@pytest.mark.parametrize("fmt", ["text-utf-8", "text-gbk", "xlsx"])
@pytest.mark.parametrize("header", SENSITIVE_HEADERS)
def test_a_file_with_a_sensitive_column_is_refused_and_nothing_is_kept_in_clear(
    operator_a, make_payment, caplog, fmt, header
):
    # given a refund file whose fourth column is sensitive authentication data
    payment = make_payment(operator_a.organisation)
    f = _xlsx(header, payment.query_id) if fmt == "xlsx" else _text(header, payment.query_id, fmt.split("-", 1)[1])
    original = f.read()
    f.seek(0)
    caplog.set_level(logging.DEBUG)

    # when it is uploaded and validated
    batch = upload(operator_a, f)

    # then the whole file is refused with the parser's unknown-column error, naming the column
    line = 1 if fmt == "xlsx" else 2
    assert (batch.status, batch.error_code) == ("invalid", "unknown_column")
    assert batch.error_params == {"name": header, "position": 4, "line": line}
    assert (batch.total_lines, batch.valid_lines, BatchLine.objects.filter(batch=batch).count()) == (0, 0, 0)
    # and nothing of its content is stored or logged in clear: the upload itself is encrypted at rest
    assert _clear_values_in_database() == []
    assert _clear_bytes_under(Path(settings.MEDIA_ROOT), original) == []
    assert storage.path_for(batch.stored_name).is_file()
    with storage.open_plaintext(batch.stored_name) as fh:
        assert fh.read() == original  # the scan above looked at the right file, and it holds the upload
    assert CARD not in caplog.text and ORDER_ID not in caplog.text


def test_the_same_file_without_the_sensitive_column_is_accepted(operator_a, make_payment):
    # the refusal above comes from the column, not from the rest of the file
    payment = make_payment(operator_a.organisation)
    lines = ["5.0.0|100|1||", "orderId|txnAmt|origQryId", f"{ORDER_ID}|100|{payment.query_id}"]

    batch = upload(operator_a, text_file(lines))

    assert (batch.status, batch.valid_lines) == ("validated", 1)
    assert Batch.objects.count() == 1
    assert any(ORDER_ID in row for row in _clear_values_in_database())  # the scan sees a stored line


# --- model and table introspection ---------------------------------------------------------------

# Tokens of a field or column name (split on "_" and camelCase) naming sensitive authentication data or a card number.
SENSITIVE_TOKEN = re.compile(
    r"cvv\d?|cvn\d?|cvc\d?|cav\d?|cid|csc|track\d?|magstripe|pin|pinblock|expiry|expdate|exp|pan|cardnumber|cardno"
)
# Card fields that are allowed: the masked number (BIN + last 4), the keyed hash (HMAC-SHA256), brand and class.
CARD_FIELDS_ALLOWED = {"card_masked", "card_hash", "card_type", "card_class"}


def _tokens(name: str) -> list[str]:
    name = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name)
    return [t for t in re.split(r"[_\W]+", name.lower()) if t]


def sensitive_names(names: list[str]) -> list[str]:
    """The names that name sensitive data: a sensitive token (``cvv``, ``track2``, ``pin``, ``pan``...),
    ``pin_block``, or a card field other than the masked, hashed, type and class ones."""
    bad = []
    for name in names:
        tokens = _tokens(name)
        joined = "".join(tokens)
        if name in CARD_FIELDS_ALLOWED:
            continue
        if any(SENSITIVE_TOKEN.fullmatch(t) for t in tokens) or "pinblock" in joined or "card" in tokens:
            bad.append(name)
    return bad


def _project_models():
    for model in apps.get_models():
        module = model.__module__
        if module.split(".")[0] in {"portal", "payments", "refunds", "reconciliation"}:
            yield model


def test_no_model_field_names_sensitive_authentication_data():
    names = [
        f"{model._meta.label}.{name}"
        for model in _project_models()
        for field in model._meta.concrete_fields
        for name in {field.name, field.column}
        if sensitive_names([name])
    ]
    assert names == []


def test_no_table_column_names_sensitive_authentication_data():
    # columns as the migrations left them (a RunSQL column would not show on the models)
    with connection.cursor() as cursor:
        columns = [
            f"{table}.{col.name}"
            for table in connection.introspection.table_names(cursor)
            for col in connection.introspection.get_table_description(cursor, table)
            if sensitive_names([col.name])
        ]
    assert columns == []


def test_the_card_fields_that_exist_are_the_allowed_ones():
    # the allowlist is real (a stale entry would hide nothing, but say so) and the models were seen
    card_fields = {f.name for m in _project_models() for f in m._meta.concrete_fields if "card" in _tokens(f.name)}
    assert {"card_masked", "card_hash"} <= card_fields <= CARD_FIELDS_ALLOWED
    assert {m._meta.app_label for m in _project_models()} >= {"payments", "refunds", "batches"}


@pytest.mark.parametrize(
    "name",
    ["cvv", "cvv2", "CVN2", "cvc", "track2", "track_2_data", "trackData", "pin", "pin_block", "pinBlock", "expiry"]
    + ["expiry_date", "card_exp", "pan", "full_pan", "card_number", "cardNo", "card_no", "magstripe"],
)
def test_the_name_check_catches(name):
    assert sensitive_names([name]) == [name]


@pytest.mark.parametrize(
    "name",
    ["card_masked", "card_hash", "card_type", "card_class", "expires_at", "expire_date", "discrepancy_id"]
    + ["upstream_discrepancies", "company", "spin", "opinion", "tracking_no", "pinyin_name", "expected_amount"],
)
def test_the_name_check_lets_through(name):
    assert sensitive_names([name]) == []
