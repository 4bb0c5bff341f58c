"""Celery's database result backend on the application's own connection pool.

Celery's ``DatabaseBackend`` builds a second SQLAlchemy engine per process (a pool child kept one more connection
open for nothing but result writes). This subclass hands it sessions on the Flask app's engine instead, so result
and state writes share the process's small pool (``DB_POOL_SIZE``) with everything else. ``celeryconfig.py``
registers it under the ``db`` scheme (the URL stays ``db+<DATABASE_URL>``); without a Flask app bound to the Celery
app it behaves exactly like Celery's own backend.
"""

from __future__ import annotations

import logging
from typing import Any

from celery.backends.database import DatabaseBackend
from sqlalchemy.orm import Session

logger = logging.getLogger(__name__)


class AppEngineDatabaseBackend(DatabaseBackend):
    """``DatabaseBackend`` whose sessions use the bound Flask app's engine (``app.extensions``)."""

    def _app_engine(self) -> Any | None:
        flask_app = getattr(self.app, "flask_app", None)
        if flask_app is None:
            return None
        from app.extensions import ENGINE_KEY

        return flask_app.extensions.get(ENGINE_KEY)

    def ResultSession(self, session_manager: Any = None) -> Session:  # noqa: N802 - Celery's method name
        """A session on the application's engine (Celery's own engine when no app is bound)."""
        engine = self._app_engine()
        if engine is None:
            return super().ResultSession(session_manager)
        return Session(bind=engine)
