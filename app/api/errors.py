"""Every error answers JSON in flask-smorest's shape: {code, status, message, errors?} — never an HTML page."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from flask import Flask, jsonify
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


def register_error_handlers(app: Flask) -> None:
    """JSON for every HTTP error, and a 500 document without internals for anything unexpected."""

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
