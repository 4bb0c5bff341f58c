"""Bearer-token authentication for everything under ``/api/v1``."""

from __future__ import annotations

from flask import Flask, g, request

from app.api.errors import api_abort
from app.extensions import db
from app.models import User
from app.services.users import user_for_token

PROTECTED_PREFIX = "/api/v1"


def current_user() -> User:
    """The authenticated user of this request."""
    return g.current_user


def require_admin() -> User:
    """The authenticated user if an admin, else a 403 (roles: ``litscreen users create NAME --admin``)."""
    user = current_user()
    if not user.is_admin:
        api_abort(403, "Only an admin may do this (create one with 'litscreen users create NAME --admin').")
    return user


def register_auth(app: Flask) -> None:
    """Require a valid bearer token on every /api/v1 request (the token itself is never logged or echoed)."""

    @app.before_request
    def authenticate() -> None:
        if not request.path.startswith(PROTECTED_PREFIX):
            return
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            api_abort(401, "Missing bearer token: send 'Authorization: Bearer <token>'.")
        user = user_for_token(db.session(), token.strip())
        if user is None:
            api_abort(401, "Invalid, expired or revoked API token.")
        g.current_user = user
