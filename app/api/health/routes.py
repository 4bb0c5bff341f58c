"""Liveness, readiness and Prometheus metrics (no authentication; /metrics takes a bearer token when
METRICS_TOKEN is set)."""

from __future__ import annotations

import hmac
import logging

from flask import Response, current_app, jsonify, request
from flask_smorest import Blueprint
from sqlalchemy import text

from app.api.errors import api_abort
from app.db.migrate import current_revision, head_revision
from app.extensions import db

logger = logging.getLogger(__name__)

blp = Blueprint("health", __name__, description="Health and metrics")


STATUS = {"type": "object", "properties": {"status": {"type": "string"}}, "required": ["status"]}
READY = {"type": "object", "properties": {
    "status": {"type": "string"}, "database": {"type": "string"},
    "schema": {"type": "object", "properties": {"current": {"type": "string", "nullable": True},
                                                "head": {"type": "string", "nullable": True}}}}}


def _json_answer(description: str, schema: dict) -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


@blp.route("/healthz")
@blp.doc(security=[], responses={"200": _json_answer("The process answers.", STATUS)})
def healthz():
    """Liveness: the process answers."""
    return jsonify({"status": "ok"})


@blp.route("/readyz")
@blp.doc(security=[], responses={"200": _json_answer("Ready.", READY),
                                 "503": _json_answer("The database is unreachable or not at head.", READY)})
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
@blp.doc(responses={"200": {"description": "Prometheus text exposition.",
                            "content": {"text/plain": {"schema": {"type": "string"}}}}})
def metrics():
    """Prometheus text exposition (needs ``Authorization: Bearer <METRICS_TOKEN>`` when METRICS_TOKEN is set)."""
    from app.metrics import render_metrics

    expected = current_app.config.get("METRICS_TOKEN")
    if expected:
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), str(expected).encode()):
            api_abort(401, "GET /metrics needs 'Authorization: Bearer <METRICS_TOKEN>'.")

    body, content_type = render_metrics(current_app._get_current_object())  # type: ignore[attr-defined]  # a LocalProxy
    return Response(body, content_type=content_type)
