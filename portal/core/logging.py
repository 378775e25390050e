"""A logging filter that keeps card numbers, codes and secrets out of every log line."""

import logging
import re

_PAN = re.compile(r"(?<!\d)(\d{6})\d{3,9}(\d{4})(?!\d)")
_SECRET = re.compile(r"(?i)(password|passwd|secret|otp_token|token|signature)(['\"]?\s*[:=]\s*['\"]?)([^\s'\",&]+)")


def redact(text: str) -> str:
    """Mask 13–19 digit runs to BIN + last four and blank values of secret-looking keys."""
    text = _PAN.sub(lambda m: m.group(1) + "*" * (len(m.group(0)) - 10) + m.group(2), text)
    return _SECRET.sub(lambda m: m.group(1) + m.group(2) + "[redacted]", text)


class RedactSecretsFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: leave the record as it is
            return True
        cleaned = redact(message)
        if cleaned != message:
            record.msg = cleaned
            record.args = ()
        return True
