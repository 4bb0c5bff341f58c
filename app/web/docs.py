"""Swagger UI's files for /api/docs, served from the installed ``flask-swagger-ui`` package (its ``dist``
folder, Swagger UI 5): the docs page renders with no network but this server's."""

from __future__ import annotations

from pathlib import Path

import flask_swagger_ui
from flask import Flask, Response, send_from_directory

SWAGGER_UI_DIST = Path(flask_swagger_ui.__file__).resolve().parent / "dist"
SWAGGER_UI_ROUTE = "/api/swagger-ui/<path:filename>"


def register_swagger_assets(app: Flask) -> None:
    """Serve ``OPENAPI_SWAGGER_UI_URL`` (``/api/swagger-ui/``) from the package's files."""

    def swagger_ui_asset(filename: str) -> Response:
        return send_from_directory(SWAGGER_UI_DIST, filename, max_age=3600)

    app.add_url_rule(SWAGGER_UI_ROUTE, endpoint="swagger_ui_asset", view_func=swagger_ui_asset)
