"""The current request's origin (IP, user agent, request id), for audit events.

Set by ``RequestContextMiddleware``; jobs and commands have none. Only origin data lives
here: the actor is always passed explicitly to services and to the audit helper.
"""

from __future__ import annotations

import contextvars
from dataclasses import dataclass


@dataclass(frozen=True)
class RequestOrigin:
    ip: str | None = None
    user_agent: str = ""
    request_id: str = ""


_NO_ORIGIN = RequestOrigin()
_origin: contextvars.ContextVar[RequestOrigin | None] = contextvars.ContextVar("request_origin", default=None)


def current_origin() -> RequestOrigin:
    return _origin.get() or _NO_ORIGIN


def set_origin(origin: RequestOrigin) -> contextvars.Token:
    return _origin.set(origin)


def reset_origin(token: contextvars.Token) -> None:
    _origin.reset(token)
