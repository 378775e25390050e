"""A logging filter that keeps card numbers, codes and secrets out of every log line.

``settings.LOGGING`` puts ``RedactSecretsFilter`` on every handler. It masks, in the message and
in a logged exception's traceback:

* card numbers: Luhn-valid runs of 13–19 digits, written in one piece or in groups separated by
  single spaces or dashes (``6222 0212 3456 7890 128``), become BIN + last four
  (``622202*********0128``, the masked form used everywhere in the portal);
* the whole value of ``Cookie``, ``Set-Cookie``, ``Authorization`` and ``Proxy-Authorization``
  headers (also as ``HTTP_COOKIE`` / ``HTTP_AUTHORIZATION`` request META keys);
* the value of any ``key=value`` / ``key: value`` whose key names a password, a secret, a token,
  a signature, a session id or a CSRF token (``password``, ``new_password1``, ``otp_token``,
  ``csrfmiddlewaretoken``, ``csrftoken``, ``sessionid``, ``__Host-sessionid`` …), as ``[redacted]``.

A bare value without its key (a session id on its own) cannot be told from any other string:
never log one.
"""

import logging
import re

_PAN = re.compile(r"(?<!\d)\d{13,19}(?!\d)")
# Digit groups joined by single spaces or dashes (one group alone too); ``_mask_grouped`` finds the
# card numbers among them.
_DIGIT_GROUPS = re.compile(r"(?<!\d)\d+(?:[ -]\d+)*(?!\d)")
_SEPARATOR = re.compile(r"[ -]")
# Groups of a card number written in pieces, but the last, have at least this many digits: keeps
# dates (2026-01-01), phones (+86 138…) and lists of small numbers from being read as one.
_MIN_GROUP = 3
# Header-like keys whose whole value (to the closing quote or the end of the line) is a secret.
_HEADER = re.compile(
    r"(?i)(?<![\w-])((?:http_)?(?:set[-_]|proxy[-_])?(?:cookie|authorization))"
    r"(['\"]?\s*[:=]\s*)(?:(['\"])(?:(?!\3)[^\r\n])*|[^\r\n'\"]+)"
)
# A key (a whole word, so that a long word costs linear time) followed by ``=`` or ``:``; its value
# is blanked when the key names a secret.
_KEY = re.compile(r"(?<![\w-])[\w-]++(?=['\"]?\s*+[:=])")
_SECRET_KEY = re.compile(r"(?i)pass(?:word|wd|phrase)|secret|token|signature|session_?id|session_?key|sessid|csrf")
_VALUE = re.compile(r"['\"]?\s*[:=]\s*['\"]?([^\s'\",&;]+)")
REDACTED = "[redacted]"


def luhn_valid(digits: str) -> bool:
    """The Luhn check every card number passes (and most other long numbers fail)."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _masked(digits: str) -> str:
    return digits[:6] + "*" * (len(digits) - 10) + digits[-4:]


def _mask_pan(match: re.Match) -> str:
    digits = match.group(0)
    if not luhn_valid(digits):
        return digits  # a merchant number, a timing, an id: not a card number
    return _masked(digits)


def mask_card_numbers(text: str) -> str:
    """Mask every Luhn-valid 13–19 digit run in ``text`` to BIN + last four."""
    return _PAN.sub(_mask_pan, text)


def _mask_grouped(match: re.Match) -> str:
    """Mask the card numbers among digit groups joined by single spaces or dashes.

    A card number is a run of consecutive groups with 13–19 digits in all that passes the Luhn
    check, every group but its last having at least ``_MIN_GROUP`` digits (one group alone: any).
    Overlapping card numbers are masked together, so that no digit of one shows through another;
    a masked run is written without separators, as BIN + last four.
    """
    text = match.group(0)
    groups = _SEPARATOR.split(text)
    if len(groups) == 1:
        return _masked(text) if 13 <= len(text) <= 19 and luhn_valid(text) else text
    separators = _SEPARATOR.findall(text)
    spans: list[list[int]] = []
    for i in range(len(groups)):
        total = 0
        for j in range(i, len(groups)):
            if j > i and len(groups[j - 1]) < _MIN_GROUP:
                break
            total += len(groups[j])
            if total > 19:
                break
            if total >= 13 and luhn_valid("".join(groups[i : j + 1])):
                if spans and i <= spans[-1][1]:
                    spans[-1][1] = max(spans[-1][1], j)
                else:
                    spans.append([i, j])
    if not spans:
        return text
    out: list[str] = []
    i = 0
    for start, end in spans:
        for k in range(i, start):
            out += [groups[k], separators[k]]
        out.append(_masked("".join(groups[start : end + 1])))
        if end < len(separators):
            out.append(separators[end])
        i = end + 1
    for k in range(i, len(groups)):
        out.append(groups[k])
        if k < len(separators):
            out.append(separators[k])
    return "".join(out)


def _redact_header(match: re.Match) -> str:
    return match.group(1) + match.group(2) + (match.group(3) or "") + REDACTED


def _redact_keys(text: str) -> str:
    out: list[str] = []
    pos = 0
    for key in _KEY.finditer(text):
        if key.start() < pos or not _SECRET_KEY.search(key.group(0)):
            continue
        value = _VALUE.match(text, key.end())
        if value is None:
            continue
        out += [text[pos : value.start(1)], REDACTED]
        pos = value.end(1)
    if not out:
        return text
    out.append(text[pos:])
    return "".join(out)


def redact(text: str) -> str:
    """``text`` with card numbers masked to BIN + last four and secret values blanked (see the module)."""
    text = _DIGIT_GROUPS.sub(_mask_grouped, text)
    text = _HEADER.sub(_redact_header, text)
    return _redact_keys(text)


class RedactSecretsFilter(logging.Filter):
    """Rewrite the record's message (arguments included) and traceback through ``redact``. Keeps every record."""

    _formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: leave the record as it is
            message = None
        if message is not None:
            cleaned = redact(message)
            if cleaned != message:
                record.msg = cleaned
                record.args = ()
        if record.exc_info and not record.exc_text:
            # Formatters reuse exc_text when it is set: render the traceback once, redacted.
            record.exc_text = self._formatter.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True
