"""Worker entry for tests and benchmarks: ``celery -A tasks.diagnostic_worker worker``.

The production worker (``tasks.celery``) plus the diagnostic probes of ``tasks/diagnostics.py`` (ping, execution
records, a worker that stops itself). The Procfile and the demo never use it, so production workers do not
register those tasks.
"""

from __future__ import annotations

import tasks.diagnostics  # noqa: F401  (registers the probes on the app below)
from tasks.celery import app, flask_app

__all__ = ["app", "flask_app"]
