"""One SQLAlchemy engine per Flask app and a session scoped to (thread, app), removed when the context ends."""

from __future__ import annotations

import threading

from flask import Flask, current_app, has_app_context
from sqlalchemy import Engine, create_engine
from sqlalchemy.orm import Session, scoped_session, sessionmaker

from app.db.connections import name_app_connections, pool_size_for_process
from app.db.pool import LendingQueuePool, offer_connections

ENGINE_KEY = "litscreen_db_engine"


class Database:
    """One SQLAlchemy engine per app, and a session scoped to (thread, app), removed when the context ends."""

    def __init__(self) -> None:
        # any session factory works; the stub asks for a sessionmaker, whose bind could not follow the current app
        self.session: scoped_session[Session] = scoped_session(
            self._new_session, scopefunc=self._scope)  # type: ignore[arg-type]

    @staticmethod
    def _scope() -> tuple[int, int]:
        # the app itself, not the proxy; current_app is typed as Flask although it is a LocalProxy
        app_id = id(current_app._get_current_object()) if has_app_context() else 0  # type: ignore[attr-defined]
        return threading.get_ident(), app_id

    def _new_session(self) -> Session:
        return sessionmaker(bind=self.engine, expire_on_commit=False)()

    @property
    def engine(self) -> Engine:
        """The current app's engine."""
        return current_app.extensions[ENGINE_KEY]

    def init_app(self, app: Flask) -> None:
        """Create the engine for ``app.config['SQLALCHEMY_DATABASE_URI']`` with the configured pool."""
        from app.config import Settings

        settings = Settings.of(app.config).database
        engine = create_engine(
            app.config["SQLALCHEMY_DATABASE_URI"],
            poolclass=LendingQueuePool,
            pool_pre_ping=True,
            pool_size=pool_size_for_process(settings.pool_size),
            max_overflow=settings.max_overflow,
            pool_timeout=settings.pool_timeout,
        )
        name_app_connections(engine)  # litscreen-<role>:<pid>:app in pg_stat_activity
        offer_connections(engine)  # the broker of a publish-only process borrows from this pool
        app.extensions[ENGINE_KEY] = engine
        app.extensions["litscreen_db"] = self

        @app.teardown_appcontext
        def remove_session(_exc: BaseException | None) -> None:
            self.session.remove()
