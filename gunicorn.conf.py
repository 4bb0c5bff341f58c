"""gunicorn settings for the web process (``gunicorn -c gunicorn.conf.py "app:create_app()"``; gunicorn also reads
this file by itself when started from the repository root).

- ``gthread`` workers with several threads each: one slow request (a 50 MB import) never holds the only
  thread of a worker, so health checks and other users are answered meanwhile;
- request line / header limits, and gunicorn's own error answers (400, 414, 431, 500 …) as JSON in the API's
  error shape instead of gunicorn's HTML page (``gunicorn.util.write_error`` is the one function gunicorn's
  workers use to write them).
"""

from __future__ import annotations

import json
import os
from http import HTTPStatus

import gunicorn.util

from app.config import load_settings

bind = f"{os.environ.get('WEB_HOST', '127.0.0.1')}:{os.environ.get('PORT', '5000')}"
workers = load_settings().operations.web_concurrency  # WEB_CONCURRENCY, also in `litscreen doctor`'s arithmetic
worker_class = "gthread"
threads = int(os.environ.get("WEB_THREADS", "8"))
timeout = int(os.environ.get("WEB_TIMEOUT", "120"))
graceful_timeout = 30
keepalive = 5
limit_request_line = 8190
limit_request_fields = 100
limit_request_field_size = 8190
accesslog = "-"


def write_json_error(sock, status_int: int, reason: str, mesg: str) -> None:  # type: ignore[no-untyped-def]
    """gunicorn's error answer, as ``{code, status, message}`` JSON."""
    try:
        phrase = HTTPStatus(status_int).phrase
    except ValueError:
        phrase = reason
    body = json.dumps({"code": status_int, "status": phrase, "message": mesg or reason}).encode("utf-8")
    head = (f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode("latin-1")
    gunicorn.util.write_nonblock(sock, head + body)


gunicorn.util.write_error = write_json_error
