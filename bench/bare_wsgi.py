"""The baseline of ``notify``: a WSGI app that reads and parses a form POST and answers ``200 ok``.

Served by the same gunicorn command line as the portal (same worker class and count), so the ratio shows what
signature verification and the idempotent ledger write cost per notification.
"""

from urllib.parse import parse_qsl


def application(environ, start_response):
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length else b""
    fields = dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
    status = "200 OK" if environ["REQUEST_METHOD"] != "POST" or fields else "400 Bad Request"
    start_response(status, [("Content-Type", "text/plain"), ("Content-Length", "2")])
    return [b"ok"]
