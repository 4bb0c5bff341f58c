"""Every error answers JSON in flask-smorest's shape: {code, status, message, errors?} — never an HTML page.

Services raise domain errors; this module is the one place that maps them to HTTP (``DOMAIN_ERRORS``), so
views call services and let those errors propagate."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from flask import Flask, Response, jsonify
from flask_smorest import abort
from werkzeug.exceptions import HTTPException

logger = logging.getLogger(__name__)


def error_body(code: int, message: str | None = None, errors: dict | None = None) -> dict:
    """The contract's error document."""
    status = HTTPStatus(code)
    body: dict = {"code": code, "status": status.phrase, "message": message or status.description}
    if errors:
        body["errors"] = errors
    return body


def api_abort(code: int, message: str, errors: dict | None = None) -> None:
    """Abort the request with the contract's error shape (flask-smorest's abort)."""
    kwargs: dict[str, Any] = {"message": message}
    if errors:
        kwargs["errors"] = errors
    abort(code, **kwargs)


def _domain_statuses() -> dict[type[Exception], int]:
    """Domain error class -> HTTP status (0: the error carries its own ``status``)."""
    from app.importers import ImportRejected
    from app.services.engine.errors import BudgetTooLow, ScreeningError
    from app.services.fulltext.review import FieldReviewRejected
    from app.services.kinds import KindInputError, NothingToProcess
    from app.services.possible_duplicates import DuplicateMergeError
    from app.services.projects import ProjectNotFound
    from app.services.record_screening import NoModelsConfigured
    from app.services.screening_results import ResultNotFound, TaskNotFound

    return {ProjectNotFound: 404, TaskNotFound: 404, ResultNotFound: 404, NoModelsConfigured: 409,
            ScreeningError: 409, NothingToProcess: 409, KindInputError: 422, ImportRejected: 0,
            DuplicateMergeError: 0, FieldReviewRejected: 422, BudgetTooLow: 422}


NOT_FOUND_NAMES = {"ProjectNotFound": "Project", "TaskNotFound": "Task", "ResultNotFound": "Result"}


def domain_error_body(exc: Exception, status: int) -> dict:
    """The error document for a domain error (what is missing, or the service's own message)."""
    name = type(exc).__name__
    if name in NOT_FOUND_NAMES:
        ident = exc.args[0] if exc.args else ""
        return error_body(status, f"{NOT_FOUND_NAMES[name]} {ident} not found.")
    if name == "NoModelsConfigured":
        return error_body(status, f"No screening models configured: {exc}")
    field = getattr(exc, "field", None)
    if name in ("KindInputError", "FieldReviewRejected", "BudgetTooLow"):
        return error_body(status, str(exc), {"json": {field: [str(exc)]}})
    return error_body(status, str(exc), {field: [str(exc)]} if field else None)


def register_error_handlers(app: Flask) -> None:
    """JSON for every HTTP error and domain error, and a 500 document without internals for anything else."""
    for error_class, code in _domain_statuses().items():
        def handle_domain_error(exc: Exception, code: int = code) -> Response:
            status = code or int(getattr(exc, "status", 422))
            response = jsonify(domain_error_body(exc, status))
            response.status_code = status
            return response

        app.register_error_handler(error_class, handle_domain_error)

    @app.errorhandler(HTTPException)
    def handle_http_exception(exc: HTTPException):
        data = getattr(exc, "data", None) or {}
        message = data.get("message") or exc.description
        errors = data.get("errors")
        if errors is None and "messages" in data:
            errors = data["messages"]
        body = error_body(exc.code or 500, message if isinstance(message, str) else None, errors)
        response = jsonify(body)
        response.status_code = exc.code or 500
        for name, value in (exc.get_headers() if hasattr(exc, "get_headers") else []):
            if name.lower() not in ("content-type", "content-length"):
                response.headers[name] = value
        return response

    @app.errorhandler(Exception)
    def handle_unexpected(exc: Exception):
        logger.exception("unhandled error: %s", type(exc).__name__)
        response = jsonify(error_body(500, "Internal server error."))
        response.status_code = 500
        return response
