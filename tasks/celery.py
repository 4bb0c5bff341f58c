"""Worker entry point: ``celery -A tasks worker`` finds ``tasks.celery.app`` here.

It builds the Flask app (which configures the shared Celery object from ``celeryconfig.py``) and imports the
task modules so their tasks are registered. Tests and benchmarks start ``celery -A tasks.diagnostic_worker``,
which adds the diagnostic probes of ``tasks/diagnostics.py``; production workers never register them.
"""

from __future__ import annotations

from celery.signals import worker_process_init

from app import create_app

flask_app = create_app()
app = flask_app.extensions["celery"]

# the task modules register their tasks on import; they need the app configured first
import tasks.maintenance  # noqa: E402,F401
import tasks.screening  # noqa: E402,F401


@worker_process_init.connect
def _dispose_inherited_engine(**_kwargs: object) -> None:
    """A forked pool child must not reuse the parent's database connections."""
    flask_app.extensions["litscreen_db_engine"].dispose(close=False)
