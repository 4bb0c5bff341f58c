"""Liveness, readiness and Prometheus metrics (no authentication)."""

from __future__ import annotations

import logging

from flask import Response, current_app, jsonify
from flask_smorest import Blueprint
from sqlalchemy import text

from app.db.migrate import current_revision, head_revision
from app.extensions import db

logger = logging.getLogger(__name__)

blp = Blueprint("health", __name__, description="Health and metrics")


@blp.route("/healthz")
def healthz():
    """Liveness: the process answers."""
    return jsonify({"status": "ok"})


@blp.route("/readyz")
def readyz():
    """Readiness: the database answers and its schema is at the newest migration."""
    try:
        with db.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        current = current_revision(db.engine)
    except Exception as exc:  # noqa: BLE001 - readiness reports any database failure as 503
        logger.warning("readyz: database unreachable: %s", type(exc).__name__)
        response = jsonify({"status": "unavailable", "database": "unreachable"})
        response.status_code = 503
        return response
    head = head_revision()
    ready = current == head
    response = jsonify({"status": "ok" if ready else "unavailable", "database": "ok",
                        "schema": {"current": current, "head": head}})
    response.status_code = 200 if ready else 503
    return response


@blp.route("/metrics")
def metrics():
    """Prometheus text exposition."""
    from app.metrics import render_metrics

    # the app itself, not the proxy; current_app is typed as Flask although it is a LocalProxy
    body, content_type = render_metrics(current_app._get_current_object())  # type: ignore[attr-defined]
    return Response(body, content_type=content_type)
