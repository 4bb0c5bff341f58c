"""Liveness, readiness and Prometheus metrics (no authentication; /metrics takes a bearer token when
METRICS_TOKEN is set)."""

from __future__ import annotations

import hmac
import logging

from flask import Response, current_app, jsonify, request
from flask_smorest import Blueprint

from app.api.errors import api_abort
from app.db.migrate import current_revision
from app.extensions import db

logger = logging.getLogger(__name__)

blp = Blueprint("health", __name__, description="Health and metrics")


STATUS = {"type": "object", "properties": {"status": {"type": "string"}}, "required": ["status"]}
CHECK = {"type": "object", "properties": {"name": {"type": "string"}, "ok": {"type": "boolean"},
                                          "detail": {"type": "string"}, "fix": {"type": "string", "nullable": True}}}
READY = {"type": "object", "properties": {
    "status": {"type": "string"}, "database": {"type": "string"}, "checks": {"type": "array", "items": CHECK},
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
    """Readiness: the database answers, its schema is at the newest migration and the broker tables exist."""
    from app.db.migrate import head_revision
    from app.services.doctor import readiness_checks
    from app.services.doctor.database import DatabaseTarget

    target = DatabaseTarget(current_app.config["SQLALCHEMY_DATABASE_URI"],
                            embedded=not current_app.config.get("DATABASE_URL"))
    checks = readiness_checks(db.engine, target)
    ready = all(check.ok for check in checks)
    body: dict = {"status": "ok" if ready else "unavailable",
                  "database": "ok" if checks[0].ok else "unreachable",
                  "checks": [{"name": check.name, "ok": check.ok, "detail": check.detail, "fix": check.fix}
                             for check in checks]}
    if checks[0].ok:
        try:
            current = current_revision(db.engine)
        except Exception as exc:  # noqa: BLE001 - a database lost between two statements is still not ready
            logger.warning("readyz: database unreachable: %s", type(exc).__name__)
            current, ready = None, False
        body["schema"] = {"current": current, "head": head_revision()}
    else:
        logger.warning("readyz: %s", checks[0].detail)
    response = jsonify(body)
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
