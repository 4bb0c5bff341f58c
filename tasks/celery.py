"""Worker entry point: ``celery -A tasks worker`` finds ``tasks.celery.app`` here.

It builds the Flask app (which configures the shared Celery object from ``celeryconfig.py``) and imports the
task modules so their tasks are registered.
"""

from __future__ import annotations

from celery.signals import worker_process_init

from app import create_app

flask_app = create_app()
app = flask_app.extensions["celery"]

import tasks.diagnostics  # noqa: E402,F401  (registers tasks)
import tasks.maintenance  # noqa: E402,F401
import tasks.screening  # noqa: E402,F401


@worker_process_init.connect
def _dispose_inherited_engine(**_kwargs: object) -> None:
    """A forked pool child must not reuse the parent's database connections."""
    flask_app.extensions["litscreen_db_engine"].dispose(close=False)
