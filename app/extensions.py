"""Extension objects, created unbound here and bound to an app by ``create_app`` (Flask's factory pattern)."""

from __future__ import annotations

from celery import Celery
from flask_smorest import Api

from app.db.session import ENGINE_KEY, Database

__all__ = ["ENGINE_KEY", "api", "celery", "db"]

db = Database()
api = Api()
celery = Celery("litscreen", set_as_current=True)
