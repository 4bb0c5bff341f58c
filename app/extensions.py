"""Extension objects, created unbound here and bound to an app by ``create_app`` (Flask's factory pattern)."""

from __future__ import annotations

from celery import Celery
from flask_smorest import Api
from flask_wtf.csrf import CSRFProtect

from app.db.session import ENGINE_KEY, Database

__all__ = ["ENGINE_KEY", "api", "celery", "csrf", "db"]

db = Database()
api = Api()
csrf = CSRFProtect()  # bound with WTF_CSRF_CHECK_DEFAULT off: only the workspace (app/web/) asks for a token
celery = Celery("litscreen", set_as_current=True)
