"""Sign-in with an API token, the session that follows, sign-out, and the workspace's error pages.

The token is checked by ``app.services.users`` as the API's bearer check does; the session keeps only the token
row's id (never the secret), and every request re-checks that the token is still unrevoked and unexpired, so
revoking it ends the browser session too.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlsplit

from flask import g, redirect, render_template, request, session, url_for
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

from app.extensions import csrf, db
from app.models import User
from app.services.projects import ProjectNotFound
from app.services.screening_results import ResultNotFound, TaskNotFound
from app.services.users import active_token, user_for_token_id
from app.web.blueprint import bp

logger = logging.getLogger(__name__)

PUBLIC_ENDPOINTS = {"web.sign_in", "web.static"}


def reviewer() -> User:
    """The signed-in reviewer of this request."""
    return g.reviewer


def _safe_next(target: str | None) -> str:
    """``target`` when it is a path inside the workspace, else the project list (no open redirect)."""
    if target:
        parts = urlsplit(target)
        if not parts.scheme and not parts.netloc and target.startswith("/ui/") and "\\" not in target:
            return target
    return url_for("web.projects")


@bp.before_request
def check_csrf_and_session() -> Response | None:
    """Every unsafe method needs the form's CSRF token; every page but sign-in needs a live session."""
    if request.endpoint == "web.static":
        return None  # the stylesheet and the script are public and need no database
    csrf.protect()  # a no-op for GET/HEAD/OPTIONS; CSRFError (400) otherwise
    g.reviewer = None
    token_id = session.get("token_id")
    if token_id is not None:
        user = user_for_token_id(db.session(), int(token_id))
        if user is not None and user.id == session.get("user_id"):
            g.reviewer = user
        else:
            session.clear()  # the token was revoked or has expired
    if g.reviewer is None and request.endpoint not in PUBLIC_ENDPOINTS:
        if request.method == "GET" and not request.path.endswith(".json"):
            return redirect(url_for("web.sign_in", next=request.full_path.rstrip("?")))
        return Response("Sign in first.", status=401, mimetype="text/plain")
    return None


@bp.route("/sign-in", methods=["GET", "POST"])
def sign_in() -> Any:
    """The sign-in form: paste an API token (``litscreen tokens create NAME``)."""
    error = None
    status = 200
    if request.method == "POST":
        token = (request.form.get("token") or "").strip()
        found = active_token(db.session(), token)
        if found is not None:
            api_token, user = found
            session.clear()  # a fresh session (and CSRF token) for the signed-in reviewer
            session.permanent = True
            session["token_id"] = api_token.id
            session["user_id"] = user.id
            logger.info("workspace sign-in of user %s with token %s", user.id, api_token.id)
            return redirect(_safe_next(request.form.get("next")))
        error = "That token is not valid: it may be mistyped, expired or revoked."
        status = 401
    return render_template("web/sign_in.html", error=error, next=request.values.get("next", "")), status


@bp.route("/sign-out", methods=["POST"])
def sign_out() -> Response:
    """End the session (the token itself stays valid for the API)."""
    session.clear()
    return redirect(url_for("web.sign_in"))


def _error_page(status: int, title: str, message: str) -> tuple[str, int]:
    return render_template("web/error.html", status=status, title=title, message=message), status


@bp.errorhandler(CSRFError)
def csrf_failed(exc: CSRFError) -> tuple[str, int]:
    return _error_page(400, "The form has expired",
                       f"{exc.description} Go back, reload the page and submit the form again.")


@bp.errorhandler(ProjectNotFound)
@bp.errorhandler(TaskNotFound)
@bp.errorhandler(ResultNotFound)
def not_yours(exc: LookupError) -> tuple[str, int]:
    return _error_page(404, "Not found", "There is no such page among your projects.")


@bp.errorhandler(HTTPException)
def http_error(exc: HTTPException) -> tuple[str, int]:
    return _error_page(exc.code or 500, exc.name, exc.description or "")
