"""litscreen: the Flask application factory."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask

from app.config import load_config
from app.database_url import redact, resolve_database_url
from app.db.connections import database_pooler, direct_database_url, install_connection_settings
from app import extensions

logger = logging.getLogger(__name__)


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Build the litscreen Flask app; ``config`` overrides the environment (tests pass their own)."""
    app = Flask(__name__, instance_relative_config=False)
    app.config.update(load_config(config))
    app.config["SQLALCHEMY_DATABASE_URI"] = resolve_database_url(
        app.config.get("DATABASE_URL"), app.config.get("INSTANCE_DIR")
    )
    app.config["SQLALCHEMY_DIRECT_URI"] = direct_database_url(app.config, app.config["SQLALCHEMY_DATABASE_URI"])
    install_connection_settings(database_pooler(app.config))
    register_logging(app)
    extensions.db.init_app(app)
    register_celery(app)
    register_api(app)
    logger.debug("litscreen app on %s", redact(app.config["SQLALCHEMY_DATABASE_URI"]))
    return app


def register_logging(app: Flask) -> None:
    """Plain stderr logging at LOG_LEVEL unless the host process configured logging already."""
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(
            level=app.config.get("LOG_LEVEL", "INFO"),
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        )


def register_celery(app: Flask) -> None:
    """Configure the unbound Celery app from ``celeryconfig`` and run every task inside an app context."""
    import celeryconfig

    celery = extensions.celery
    database_url = app.config["SQLALCHEMY_DATABASE_URI"]
    celery.config_from_object(celeryconfig)
    celery.conf.update(
        broker_url=app.config.get("CELERY_BROKER_URL") or celeryconfig.broker_url_for(database_url),
        result_backend=app.config.get("CELERY_RESULT_BACKEND") or celeryconfig.result_backend_for(database_url),
    )
    # the broker's LISTEN connection needs a session: behind PgBouncer it goes to DATABASE_DIRECT_URL
    celery.conf.broker_transport_options = {**celery.conf.broker_transport_options,
                                            "direct_url": app.config["SQLALCHEMY_DIRECT_URI"]}
    if app.config.get("CELERY_CONFIG"):
        celery.conf.update(app.config["CELERY_CONFIG"])

    class FlaskTask(celery.Task):
        """Runs the task in an app context, so it gets a fresh scoped session removed afterwards."""

        abstract = True

        def __call__(self, *args: Any, **kwargs: Any) -> Any:
            with app.app_context():
                return self.run(*args, **kwargs)

    celery.Task = FlaskTask
    celery.set_default()
    app.extensions["celery"] = celery


def register_api(app: Flask) -> None:
    """Bind flask-smorest, the JSON error handlers and every blueprint."""
    from app.api import register_blueprints
    from app.api.errors import register_error_handlers

    extensions.api.init_app(app)
    register_error_handlers(app)
    register_blueprints(app, extensions.api)
