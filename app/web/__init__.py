"""The reviewer's workspace at ``/ui/``: server-rendered pages over the same services as the API.

Sign-in exchanges an API token for a signed session cookie (HttpOnly, SameSite=Lax, Secure over https); every
form carries a CSRF token (Flask-WTF), asked for by this blueprint only — the bearer-token API needs none.
Views load rows through ``app/services/`` with the signed-in reviewer as owner, exactly as the API routes do, so
another user's project or task is a 404 here too. ``register_web`` also serves Swagger UI's files for
``/api/docs`` from the installed package (``app/web/docs.py``), so nothing is fetched from a CDN.
"""

from __future__ import annotations

import errno
import logging
import os
import secrets
import time
from datetime import timedelta
from pathlib import Path

from flask import Flask, Response, has_request_context, request
from flask.sessions import SecureCookieSessionInterface

from app.extensions import csrf

logger = logging.getLogger(__name__)

SESSION_COOKIE_NAME = "litscreen_ui"
SECRET_KEY_FILE = "secret_key"
CONTENT_SECURITY_POLICY = ("default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
                           "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'")


class WorkspaceSessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie session whose Secure flag follows ``WEB_COOKIE_SECURE`` (``auto``: the request's
    scheme, so the cookie is Secure whenever the workspace is served over https)."""

    def get_cookie_secure(self, app: Flask) -> bool:
        mode = app.config.get("WEB_COOKIE_SECURE", "auto")
        if mode in ("on", "off"):
            return mode == "on"
        return has_request_context() and request.is_secure


def _read_key(path: Path) -> str:
    """The key in ``path``, waiting up to a second for another process that has just created it to write it."""
    for _attempt in range(20):
        key = path.read_text(encoding="utf-8").strip()
        if key:
            return key
        time.sleep(0.05)
    raise OSError(errno.EIO, "the session key file is empty", str(path))


def _process_key(key: str, folder: Path, exc: OSError) -> str:
    """A key for this process alone, when the instance directory cannot keep one."""
    logger.warning("cannot keep the workspace's session key in %s (%s): set SECRET_KEY, or sign-ins last only as "
                   "long as this process and are not shared with other web processes", folder, exc.strerror)
    return key


def instance_secret_key(instance_dir: str | None) -> str:
    """The installation's cookie-signing key: ``<instance>/secret_key``, created (mode 0600) on first use."""
    from app.db.embedded import default_instance_dir

    folder = Path(instance_dir).expanduser().resolve() if instance_dir else default_instance_dir()
    path = folder / SECRET_KEY_FILE
    key = secrets.token_urlsafe(48)
    try:
        return _read_key(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        return _process_key(key, folder, exc)
    try:  # O_EXCL: of two processes starting together, one writes and both read the same key
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read_key(path)
    except OSError as exc:
        return _process_key(key, folder, exc)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(key + "\n")
    logger.info("created the workspace's session key in %s", path)
    return key


def register_web(app: Flask) -> None:
    """Session cookie, CSRF protection for the workspace only, the /ui/ blueprint and Swagger UI's local files."""
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = instance_secret_key(app.config.get("LITSCREEN_INSTANCE_DIR"))
    app.config.update(
        SESSION_COOKIE_NAME=SESSION_COOKIE_NAME,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_PATH="/ui",
        PERMANENT_SESSION_LIFETIME=timedelta(hours=float(app.config.get("WEB_SESSION_HOURS", 12.0))),
        WTF_CSRF_CHECK_DEFAULT=False,  # the bearer-token API carries no cookie, so it needs no CSRF token
        WTF_CSRF_TIME_LIMIT=None,  # the token lives as long as the session
    )
    app.session_interface = WorkspaceSessionInterface()
    csrf.init_app(app)

    from app.web import auth, docs, projects, reports, review, runs  # noqa: F401 - their routes join the blueprint
    from app.web.blueprint import bp

    app.register_blueprint(bp)
    docs.register_swagger_assets(app)

    @app.after_request
    def workspace_headers(response: Response) -> Response:
        if request.blueprint == bp.name:
            response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
            response.headers.setdefault("X-Content-Type-Options", "nosniff")
            response.headers.setdefault("Referrer-Policy", "same-origin")
            response.headers.setdefault("X-Frame-Options", "DENY")
            if "text/html" in (response.content_type or ""):
                response.headers.setdefault("Cache-Control", "no-store")
        return response
