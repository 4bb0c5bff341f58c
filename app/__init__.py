"""litscreen: the Flask application factory."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from flask import Flask

from app import extensions
from app.config import ConfigError, Settings, flask_config, load_settings
from app.db.connections import direct_database_url, install_connection_settings
from app.db.url import redact, resolve_database_url

__all__ = ["ConfigError", "create_app"]

logger = logging.getLogger(__name__)


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the litscreen Flask app; ``config`` overrides the environment (tests pass their own).

    The settings are validated first: a bad variable raises :class:`ConfigError` naming it, before anything starts.
    """
    settings = load_settings(config)
    app = Flask(__name__, instance_relative_config=False)
    app.config.update(flask_config(settings, config))
    app.config["SQLALCHEMY_DATABASE_URI"] = resolve_database_url(settings.database.url, settings.database.instance_dir)
    app.config["SQLALCHEMY_DIRECT_URI"] = direct_database_url(settings.database.direct_url,
                                                            app.config["SQLALCHEMY_DATABASE_URI"])
    install_connection_settings(settings.database.pooler)
    register_logging(app)
    extensions.db.init_app(app)
    register_celery(app, settings)
    register_api(app)
    register_web(app)
    logger.debug("litscreen app on %s", redact(app.config["SQLALCHEMY_DATABASE_URI"]))
    return app


def register_logging(app: Flask) -> None:
    """Plain stderr logging at LOG_LEVEL unless the host process configured logging already."""
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(
            level=app.config["LOG_LEVEL"],
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        )


def register_web(app: Flask) -> None:
    """The reviewer's workspace at /ui/ (session cookie, CSRF) and Swagger UI's local files."""
    from app.web import register_web as register_workspace

    register_workspace(app)


def register_celery(app: Flask, settings: Settings) -> None:
    """Configure the unbound Celery app from ``celeryconfig`` and ``settings``; run every task in an app context."""
    import celeryconfig

    celery = extensions.celery
    celery.config_from_object(celeryconfig)
    celery.conf.update(celeryconfig.settings_for(settings, app.config["SQLALCHEMY_DATABASE_URI"]))
    if app.config.get("CELERY_CONFIG"):
        celery.conf.update(app.config["CELERY_CONFIG"])

    task_base: Any = celery.Task  # the app's own Task class (a variable, so typed Any)

    class FlaskTask(task_base):
        """Runs the task in an app context, so it gets a fresh scoped session removed afterwards."""

        abstract = True

        def __call__(self, *args: Any, **kwargs: Any) -> Any:
            with app.app_context():
                return self.run(*args, **kwargs)

    celery.Task = FlaskTask
    celery.flask_app = app  # the result backend (tasks/results.py) writes through this app's engine
    celery.set_default()
    app.extensions["celery"] = celery


def register_api(app: Flask) -> None:
    """Bind flask-smorest, the JSON error handlers and every blueprint."""
    from app.api import register_blueprints
    from app.api.errors import register_error_handlers
    from app.api.openapi_errors import ErrorResponsesPlugin
    from app.api.request_guards import install_converters, register_request_guards

    install_converters(app, extensions.api)
    extensions.api.init_app(app, spec_kwargs={"extra_plugins": [ErrorResponsesPlugin()]})
    register_error_handlers(app)
    register_request_guards(app)
    register_blueprints(app, extensions.api)
