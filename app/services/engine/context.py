"""What the engine is given instead of reaching for globals: a database engine, settings, config, a publisher."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from app.config import EngineSettings
from app.services.engine.publisher import CeleryPublisher, Publisher
from app.services.engine.waits import wait_for_database

T = TypeVar("T")


@dataclass(frozen=True)
class EngineContext:
    """The engine's dependencies. Build one per call site with ``engine_context(app)``."""

    engine: Engine
    settings: EngineSettings
    config: Mapping[str, Any]
    publisher: Publisher

    def session(self) -> Session:
        """A new ORM session on the engine (the caller closes it; use ``with ctx.session() as s, s.begin()``)."""
        return Session(self.engine, expire_on_commit=False)

    def waiting(self, what: str, operation: Callable[[], T]) -> T:
        """``operation()``, waiting out database outages (see ``app.services.engine.waits``)."""
        return wait_for_database(self.settings, what, operation)


def engine_context(app: Any) -> EngineContext:
    """The context of a Flask app: its database engine, its engine settings and a publisher on its Celery app."""
    from app.extensions import ENGINE_KEY

    return EngineContext(engine=app.extensions[ENGINE_KEY], settings=EngineSettings.from_config(app.config),
                         config=app.config, publisher=CeleryPublisher(app.extensions["celery"]))
