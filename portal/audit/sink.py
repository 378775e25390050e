"""The off-box copy of the audit trail (security.md D6; PCI DSS 10.3.3).

Every audit event, once the transaction that wrote it has committed, is sent as one JSON object to
the logger ``portal.audit.sink``. ``settings.LOGGING`` gives that logger an ``AuditSyslogHandler``
when ``AUDIT_SYSLOG_ADDRESS`` is set (production: the central log server) and no handler at all
otherwise, so that ``audit_record`` does not even build the JSON (``sink_enabled``).

Wire format, one message per event (RFC 5424, facility ``local4``, severity ``info``)::

    <166>1 2026-05-04T08:15:02.123456Z portal-host merchant-portal 4242 audit - {"action":"auth.login_failure",...}

over UDP (one datagram per message; the default) or TCP (RFC 6587 octet counting:
``LENGTH SP MESSAGE``). The JSON carries every field the event's hash covers (so the central
server can recompute it and compare it with ``hash``), ASCII only. The hash digests are written
so that the card-number redaction filter, which also runs on this handler, never mistakes a run of
decimal digits inside them for a card number (``_digest_json``): a JSON parser reads back the
same hex string.

The copy is best effort and never breaks the business action: a failure to send is logged at
ERROR on ``portal.audit`` with the event's sequence and the error class only (no content). The
database chain stays the reference (``manage.py audit_verify``).

No Django model is imported at module level: ``LOGGING`` imports the handler before apps load.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import sys
import time
from datetime import UTC, datetime
from logging.handlers import SysLogHandler
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .models import AuditEvent

SINK_LOGGER_NAME = "portal.audit.sink"
sink_logger = logging.getLogger(SINK_LOGGER_NAME)
# Failures of the sink itself: never the sink logger (no loop), never the event's content.
failure_logger = logging.getLogger("portal.audit")

APP_NAME = "merchant-portal"
MSGID = "audit"
# After a failure to resolve or connect, events are not sent (but logged as lost) for this long,
# so that a dead sink costs no DNS lookup or connect timeout per request.
RETRY_SECONDS = 30.0


class SinkBackoff(OSError):
    """The sink failed recently: this event is not sent (``RETRY_SECONDS``)."""


def sink_enabled() -> bool:
    """True when a central log server is configured (``AUDIT_SYSLOG_ADDRESS``): the one cheap check
    ``audit_record`` makes. The setting, not the logger's handlers, decides: test runners attach capture
    handlers to every non-propagating logger."""
    from django.conf import settings

    return bool(getattr(settings, "AUDIT_SYSLOG_ADDRESS", "")) and sink_logger.isEnabledFor(logging.INFO)


def _digest_json(digest: str) -> str:
    """A hex digest as a JSON string literal without 13 or more consecutive literal decimal digits.

    The redaction filter masks Luhn-valid runs of 13–19 digits wherever they are, a hex digest
    included (about one event in two hundred). A digit that would make such a run is written as a
    ``\\u003N`` escape instead; the escape's own four trailing digits count towards the next run.
    """
    out = ['"']
    run = 0
    for ch in digest:
        if "0" <= ch <= "9":
            if run >= 12:
                out.append(f"\\u{ord(ch):04x}")
                run = 4
            else:
                out.append(ch)
                run += 1
        else:
            out.append(json.dumps(ch)[1:-1])
            run = 0
    out.append('"')
    return "".join(out)


def event_json(event: AuditEvent) -> str:
    """The event as one line of JSON: every hashed field, ``hash`` last."""
    payload: dict[str, Any] = {
        "sequence": event.sequence,
        "occurred_at": event.occurred_at.astimezone(UTC).isoformat(timespec="microseconds"),
        "actor_id": event.actor_id,
        "actor_repr": event.actor_repr,
        "organisation_id": event.organisation_id,
        "action": event.action,
        "outcome": event.outcome,
        "object_type": event.object_type,
        "object_id": event.object_id,
        "ip": event.ip,
        "user_agent": event.user_agent,
        "request_id": event.request_id,
        "details": event.details,
    }
    body = json.dumps(payload, separators=(",", ":"), ensure_ascii=True, default=str)
    return f'{body[:-1]},"prev_hash":{_digest_json(event.prev_hash)},"hash":{_digest_json(event.hash)}}}'


def sink_send(*, sequence: int, line: str) -> None:
    """Hand one event's JSON to the sink logger. Never raises: a failure is logged without content."""
    try:
        sink_logger.info(line, extra={"audit_sequence": sequence})
    except Exception as exc:  # a handler's own errors go to its handleError; this is belt and braces
        failure_logger.error("Audit event #%s was not copied to the off-box sink: %s", sequence, type(exc).__name__)


def parse_address(address: str) -> tuple[str, int]:
    """``host:port``, ``[v6]:port`` or ``host`` (port 514) as a (host, port) pair."""
    address = address.strip()
    if address.startswith("["):
        host, _, rest = address[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    elif address.count(":") == 1:
        host, port = address.split(":")
    else:
        host, port = address, ""
    if not host:
        raise ValueError(f"no host in syslog address {address!r}")
    return host, int(port) if port else 514


class AuditSyslogHandler(SysLogHandler):
    """``SysLogHandler`` for the audit sink: RFC 5424 messages, octet-counted framing over TCP, a
    socket created on first use in each process (none shared across a fork), a short timeout, a
    back-off after a failure to resolve or connect, and failures logged on ``portal.audit`` at
    ERROR with the event's sequence only (the standard ``handleError`` prints the message)."""

    append_nul = False

    def __init__(self, address: str, protocol: str = "udp", facility: str = "local4", timeout: float = 2.0):
        protocol = protocol.lower()
        if protocol not in {"udp", "tcp"}:
            raise ValueError(f"syslog protocol must be udp or tcp, not {protocol!r}")
        self.address_text = address
        self.timeout = timeout
        self._pid = os.getpid()
        self._retry_at = 0.0
        self._sockaddr: Any = None
        self.hostname = socket.gethostname() or "-"
        socktype = socket.SOCK_STREAM if protocol == "tcp" else socket.SOCK_DGRAM
        # The parent's __init__ calls createSocket(): deferred below to the first event.
        self._deferred = True
        super().__init__(address=parse_address(address), facility=facility, socktype=socktype)
        self._deferred = False

    def createSocket(self) -> None:
        """Resolve and (TCP) connect; on failure leave no socket and wait ``RETRY_SECONDS``."""
        if self._deferred:
            return
        self._close_socket()
        if time.monotonic() < self._retry_at:
            raise SinkBackoff("audit sink unavailable, retrying later")
        host, port = self.address
        try:
            info = socket.getaddrinfo(host, port, 0, self.socktype)
            if not info:
                raise OSError("getaddrinfo returned nothing")
            family, socktype, proto, _, sockaddr = info[0]
            sock = socket.socket(family, socktype, proto)
            try:
                sock.settimeout(self.timeout)
                if socktype == socket.SOCK_STREAM:
                    sock.connect(sockaddr)
            except OSError:
                sock.close()
                raise
        except OSError:
            self._retry_at = time.monotonic() + RETRY_SECONDS
            raise
        self.socket, self._sockaddr, self._pid, self._retry_at = sock, sockaddr, os.getpid(), 0.0

    def _close_socket(self) -> None:
        if self.socket is not None:
            try:
                self.socket.close()
            except OSError:
                pass
        self.socket = None

    def format_message(self, record: logging.LogRecord) -> bytes:
        """The RFC 5424 message: PRI VERSION TIMESTAMP HOSTNAME APP-NAME PROCID MSGID SD MSG."""
        pri = self.encodePriority(self.facility, self.mapPriority(record.levelname))
        stamp = datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        header = f"<{pri}>1 {stamp} {self.hostname} {APP_NAME} {record.process or '-'} {MSGID} -"
        return f"{header} {self.format(record)}".encode()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = self.format_message(record)
            if self.socket is None or self._pid != os.getpid():
                self.createSocket()
            if self.socktype == socket.SOCK_STREAM:
                self.socket.sendall(b"%d %s" % (len(message), message))
            else:
                self.socket.sendto(message, self._sockaddr)
        except Exception:
            self.handleError(record)

    def handleError(self, record: logging.LogRecord) -> None:
        exc = sys.exc_info()[1]
        if self.socktype == socket.SOCK_STREAM:
            self._close_socket()  # reconnect on the next event
        reason = type(exc).__name__ if exc is not None else "error"
        if isinstance(exc, SinkBackoff):
            reason = f"failed less than {RETRY_SECONDS:g} s ago, not retried yet"
        elif isinstance(exc, OSError) and exc.strerror:
            reason = f"{reason}: {exc.strerror}"
        failure_logger.error(
            "Audit event #%s was not copied to the off-box sink %s: %s",
            getattr(record, "audit_sequence", "?"),
            self.address_text,
            reason,
        )

    def close(self) -> None:
        with self.lock:
            self._close_socket()
            logging.Handler.close(self)
