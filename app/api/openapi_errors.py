"""An apispec plugin that documents the error answers every operation can give, so the OpenAPI document
describes every response (schemathesis checks them): 401 under /api/v1 (and for /metrics with METRICS_TOKEN),
400 / 413 for refused bodies, 404 for routes with ids, 403 for admin-only routes, 409 for run state conflicts,
415 / 413 for imports. Each refers to flask-smorest's error schema."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from apispec import BasePlugin

logger = logging.getLogger(__name__)

ADMIN_PATHS = ("/api/v1/cache",)
CONFLICT_SUFFIXES = ("/screening", "/cancel", "/retry")


def error_statuses(path: str, method: str) -> list[int]:
    """The error statuses an operation on ``path`` can answer besides those flask-smorest documents."""
    statuses: list[int] = []
    if path.startswith("/api/v1"):
        statuses += [401, 422]
        if method in ("post", "put", "patch", "delete"):
            statuses += [400, 413]
    if "{" in path:
        statuses.append(404)
    if path.startswith(ADMIN_PATHS):
        statuses.append(403)
    if method == "post" and path.endswith(CONFLICT_SUFFIXES):
        statuses.append(409)
    if method == "post" and path.endswith("/literatures"):
        statuses.append(415)
    if path == "/metrics":
        statuses.append(401)
    if path == "/readyz":
        statuses.append(503)
    return statuses


class ErrorResponsesPlugin(BasePlugin):
    """Adds the error responses of ``error_statuses`` to every operation that does not document them yet."""

    def operation_helper(self, path: str | None = None, operations: dict[str, Any] | None = None,
                         **kwargs: Any) -> None:
        for method, operation in (operations or {}).items():
            responses = operation.setdefault("responses", {})
            for status in error_statuses(path or "", method):
                if str(status) not in responses and status not in responses:
                    responses[str(status)] = HTTPStatus(status).name
