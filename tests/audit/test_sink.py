"""The off-box copy of the audit trail (security.md D6): each committed event reaches a real syslog
server on 127.0.0.1 within seconds, a rolled-back one never does, a dead sink breaks nothing and,
with no address configured, nothing is built nor sent."""

from __future__ import annotations

import json
import logging
import logging.config
import queue
import socket
import threading
import time
from datetime import datetime
from unittest import mock

import pytest
from django.db import transaction
from django.test import Client

from portal.audit import sink
from portal.audit.models import AuditEvent
from portal.audit.services import audit_record, compute_hash
from portal.core.logging import RedactSecretsFilter, redact
from portal.settings import logging_with_audit_sink
from tests.accounts.auth_helpers import password_step
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)

ARRIVAL_SECONDS = 2.0


class SyslogServer:
    """A syslog collector on 127.0.0.1 in a thread: UDP datagrams, or TCP octet-counted frames."""

    def __init__(self, protocol: str = "udp"):
        self.protocol = protocol
        self.messages: queue.Queue[bytes] = queue.Queue()
        self.stopped = threading.Event()
        kind = socket.SOCK_DGRAM if protocol == "udp" else socket.SOCK_STREAM
        self.sock = socket.socket(socket.AF_INET, kind)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        if protocol == "tcp":
            self.sock.listen()
        self.address = "127.0.0.1:%d" % self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._serve_udp if protocol == "udp" else self._serve_tcp, daemon=True)
        self.thread.start()

    def _serve_udp(self) -> None:
        while not self.stopped.is_set():
            try:
                data, _ = self.sock.recvfrom(65535)
            except TimeoutError:
                continue
            except OSError:
                return
            self.messages.put(data)

    def _serve_tcp(self) -> None:
        buffer = b""
        conn = None
        while not self.stopped.is_set():
            try:
                if conn is None:
                    conn, _ = self.sock.accept()
                    conn.settimeout(0.1)
                chunk = conn.recv(65535)
            except TimeoutError:
                continue
            except OSError:
                return
            if not chunk:
                conn.close()
                conn = None
                continue
            buffer += chunk
            while b" " in buffer:  # RFC 6587 octet counting: LENGTH SP MESSAGE
                length, _, rest = buffer.partition(b" ")
                if len(rest) < int(length):
                    break
                self.messages.put(rest[: int(length)])
                buffer = rest[int(length) :]
        if conn is not None:
            conn.close()

    def received(self, seconds: float) -> list[bytes]:
        """Every message that arrives within ``seconds``."""
        deadline = time.monotonic() + seconds
        out = []
        while (left := deadline - time.monotonic()) > 0:
            try:
                out.append(self.messages.get(timeout=left))
            except queue.Empty:
                break
        return out

    def wait_for(self, action: str, seconds: float = ARRIVAL_SECONDS) -> tuple[str, dict]:
        """The first message whose event has ``action``, as (syslog header, JSON body)."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                header, body = parse(self.messages.get(timeout=left))
            except queue.Empty:
                break
            if body["action"] == action:
                return header, body
        raise AssertionError(f"no {action} event within {seconds} s")

    def close(self) -> None:
        self.stopped.set()
        self.thread.join(2)
        self.sock.close()


def parse(message: bytes) -> tuple[str, dict]:
    header, _, body = message.decode().partition(" - {")
    return header, json.loads("{" + body)


@pytest.fixture
def configure_sink(settings):
    """Point the sink at an address (or none): the project's LOGGING rebuilt with the overridden
    setting and applied with dictConfig; the original configuration restored afterwards."""
    original = settings.LOGGING
    root = logging.getLogger()
    pytest_handlers = [h for h in root.handlers if type(h).__module__ == "_pytest.logging"]

    def configure(address: str, protocol: str = "udp") -> None:
        settings.AUDIT_SYSLOG_ADDRESS = address
        settings.AUDIT_SYSLOG_PROTOCOL = protocol
        settings.LOGGING = logging_with_audit_sink(original, address=address, protocol=protocol)
        logging.config.dictConfig(settings.LOGGING)
        for handler in pytest_handlers:  # dictConfig replaced the root handlers, caplog's included
            root.addHandler(handler)

    yield configure
    for handler in sink.sink_logger.handlers:
        handler.close()
    logging.config.dictConfig(original)
    for handler in pytest_handlers:
        if handler not in root.handlers:
            root.addHandler(handler)


@pytest.fixture
def udp_server():
    server = SyslogServer("udp")
    yield server
    server.close()


def test_a_failed_sign_in_arrives_with_the_same_sequence_and_hash(configure_sink, udp_server):
    configure_sink(udp_server.address)
    handler = sink.sink_logger.handlers[0]
    assert isinstance(handler, sink.AuditSyslogHandler)
    assert any(isinstance(f, RedactSecretsFilter) for f in handler.filters)
    assert sink.sink_logger.propagate is False

    response = password_step(Client(), "nobody", "Wrong-pass-2026x", ip="10.9.8.7")

    assert response.status_code == 200
    header, copy = udp_server.wait_for("auth.login_failure")
    stored = AuditEvent.objects.get(action="auth.login_failure")
    assert (copy["sequence"], copy["hash"], copy["prev_hash"]) == (stored.sequence, stored.hash, stored.prev_hash)
    assert (copy["actor_id"], copy["actor_repr"], copy["organisation_id"]) == (None, "nobody", None)
    assert (copy["outcome"], copy["ip"], copy["details"]) == ("failure", "10.9.8.7", {"step": "password"})
    assert copy["request_id"] == stored.request_id != ""
    assert copy["occurred_at"] == stored.occurred_at.isoformat(timespec="microseconds")
    assert copy["occurred_at"].endswith("+00:00")
    # RFC 5424: <local4.info>1 TIMESTAMP HOST APP PROCID MSGID SD
    pri_version, stamp, _host, app, _pid, msgid = header.split(" ")
    assert (pri_version, app, msgid) == ("<166>1", "merchant-portal", "audit")  # 166 = local4 * 8 + info
    assert stamp.endswith("Z")
    # the copy carries every hashed field: the central server can recompute the hash
    fields = {k: v for k, v in copy.items() if k != "hash"}
    fields["occurred_at"] = datetime.fromisoformat(fields["occurred_at"])
    assert compute_hash(AuditEvent(**fields)) == copy["hash"]


def test_a_business_action_is_copied_once_and_in_order(configure_sink, udp_server, merchant_a):
    configure_sink(udp_server.address)
    user = UserFactory(organisation=merchant_a, username="copy.user")
    from portal.accounts.auth_services import user_set_language

    user_set_language(user=user, language="zh-hans")
    user_set_language(user=user, language="en")

    messages = [parse(m)[1] for m in udp_server.received(1.0)]
    stored = list(AuditEvent.objects.filter(action="user.language_change").order_by("sequence"))
    assert [(m["sequence"], m["hash"], m["details"]) for m in messages] == [
        (e.sequence, e.hash, e.details) for e in stored
    ]
    assert [m["actor_id"] for m in messages] == [user.pk, user.pk]
    assert [m["organisation_id"] for m in messages] == [merchant_a.pk, merchant_a.pk]


def test_a_rolled_back_event_never_arrives(configure_sink, udp_server):
    configure_sink(udp_server.address)

    with pytest.raises(RuntimeError), transaction.atomic():
        audit_record(action="test.rolled_back", actor_repr="x")
        raise RuntimeError("the business action failed")
    audit_record(action="test.committed", actor_repr="x")

    _header, committed = udp_server.wait_for("test.committed")
    late = [parse(m)[1]["action"] for m in udp_server.received(0.5)]
    assert late == []
    assert not AuditEvent.objects.filter(action="test.rolled_back").exists()
    assert committed["sequence"] == AuditEvent.objects.get(action="test.committed").sequence


def test_the_redaction_filter_applies_to_the_copy(configure_sink, udp_server):
    configure_sink(udp_server.address)

    audit_record(action="test.note", actor_repr="x", details={"note": "card 6222 0212 3456 7890 128 by phone"})

    _header, copy = udp_server.wait_for("test.note")
    assert copy["details"] == {"note": "card 622202*********0128 by phone"}


def test_tcp_uses_octet_counting(configure_sink):
    server = SyslogServer("tcp")
    try:
        configure_sink(server.address, "tcp")
        first = audit_record(action="test.tcp", actor_repr="x", details={"n": 1})
        second = audit_record(action="test.tcp", actor_repr="x", details={"n": 2})
        copies = [server.wait_for("test.tcp")[1], server.wait_for("test.tcp")[1]]
    finally:
        server.close()
    assert [(c["sequence"], c["hash"]) for c in copies] == [
        (first.sequence, first.hash),
        (second.sequence, second.hash),
    ]


def _closed_port(kind: int) -> int:
    s = socket.socket(socket.AF_INET, kind)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


@pytest.mark.parametrize(
    "address,protocol,logged",
    [
        (f"127.0.0.1:{_closed_port(socket.SOCK_DGRAM)}", "udp", False),  # UDP: nobody to tell it is lost
        (f"127.0.0.1:{_closed_port(socket.SOCK_STREAM)}", "tcp", True),  # connection refused
        ("audit-sink.invalid:514", "udp", True),  # .invalid never resolves (RFC 6761)
    ],
)
def test_a_dead_sink_does_not_break_the_action_and_is_logged_without_content(
    configure_sink, caplog, address, protocol, logged
):
    configure_sink(address, protocol)
    caplog.set_level(logging.ERROR, logger="portal.audit")

    response = password_step(Client(), "mallory-was-here", "Wrong-pass-2026x")
    audit_record(action="test.after_failure", actor_repr="x", details={"note": "still recorded"})

    assert response.status_code == 200
    event = AuditEvent.objects.get(action="auth.login_failure")
    assert AuditEvent.objects.filter(action="test.after_failure").exists()
    errors = [r for r in caplog.records if r.name == "portal.audit" and r.levelno == logging.ERROR]
    if not logged:
        assert errors == []
        return
    assert errors, "the lost copy is logged"
    first = errors[0].getMessage()
    assert f"#{event.sequence} was not copied to the off-box sink {address}" in first
    for record in errors:
        text = record.getMessage()
        assert "mallory" not in text and "{" not in text and "still recorded" not in text
        assert record.exc_info is None


def test_without_an_address_nothing_is_built_nor_sent(configure_sink, udp_server):
    configure_sink("")
    assert sink.sink_logger.handlers == [] and sink.sink_logger.propagate is False
    assert not sink.sink_enabled()

    with mock.patch("portal.audit.services.event_json", wraps=sink.event_json) as built:
        response = password_step(Client(), "nobody", "Wrong-pass-2026x")
        audit_record(action="test.unsent", actor_repr="x")

    assert response.status_code == 200
    assert built.call_count == 0
    assert udp_server.received(0.5) == []


def test_the_settings_add_the_sink_only_with_an_address(settings):
    without = logging_with_audit_sink(settings.LOGGING, address="")
    with_address = logging_with_audit_sink(settings.LOGGING, address="logs.internal:6514", protocol="tcp")

    assert "audit_syslog" not in without["handlers"]
    assert without["loggers"]["portal.audit.sink"] == {"handlers": [], "level": "INFO", "propagate": False}
    assert with_address["handlers"]["audit_syslog"] == {
        "class": "portal.audit.sink.AuditSyslogHandler",
        "address": "logs.internal:6514",
        "protocol": "tcp",
        "facility": "local4",
        "filters": ["redact"],
    }
    assert with_address["loggers"]["portal.audit.sink"]["handlers"] == ["audit_syslog"]
    assert with_address["loggers"]["portal.audit.sink"]["propagate"] is False


@pytest.mark.parametrize(
    "address,expected",
    [("logs:514", ("logs", 514)), ("10.0.0.5", ("10.0.0.5", 514)), ("[::1]:6514", ("::1", 6514))],
)
def test_address_parsing(address, expected):
    assert sink.parse_address(address) == expected


@pytest.mark.django_db(transaction=False)
def test_a_hash_survives_the_redaction_filter():
    # 16 decimal digits in a row that pass the Luhn check: the filter would mask them as a card number
    digest = "ab" + "4111111111111111" + "c" * 46
    assert json.loads(redact(json.dumps(digest))) != digest  # written plainly, it would be masked
    encoded = sink._digest_json(digest)
    assert json.loads(encoded) == digest
    assert redact(encoded) == encoded
    assert json.loads(redact(sink._digest_json("0" * 64))) == "0" * 64
