"""gunicorn settings for the portal behind a TLS-terminating reverse proxy (nginx).

gunicorn -c deploy/gunicorn.conf.py portal.wsgi:application
"""

import multiprocessing
import os

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("GUNICORN_WORKERS", multiprocessing.cpu_count() * 2 + 1))
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", 4))
# Large uploads are streamed to disk by Django; a request should still not run for minutes.
timeout = 60
graceful_timeout = 30
keepalive = 5
# Recycle workers now and then so that a slow leak never becomes an outage.
max_requests = 2000
max_requests_jitter = 200
# Only the local proxy may set X-Forwarded-Proto / X-Forwarded-For.
forwarded_allow_ips = os.environ.get("GUNICORN_FORWARDED_ALLOW_IPS", "127.0.0.1")
limit_request_line = 8190
limit_request_fields = 100
accesslog = "-"
errorlog = "-"
# The access log carries no query string: a token or a card number must never reach a log file.
access_log_format = '%(h)s "%(m)s %(U)s %(H)s" %(s)s %(b)s %(L)ss "%(a)s"'
capture_output = True
