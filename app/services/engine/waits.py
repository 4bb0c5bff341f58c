"""Waiting out a database that refuses or drops connections (limit reached, restart, failover).

Claim, heartbeat, checkpoint, release and finalize run their statements through ``wait_for_database``: on a
disconnect-class error they back off (0.5 s doubling up to a few seconds, with jitter) and try again, for at
most ``EngineSettings.db_wait_seconds`` in all, then raise ``DatabaseUnavailable``. A database outage is never
a Celery retry (that ladder is for LLM outages) and never a crash. Errors that are not about the connection
(a constraint, a bug) are raised at once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_delay, wait_exponential_jitter

from app.config import EngineSettings
from app.services.engine.errors import DatabaseUnavailable

logger = logging.getLogger(__name__)

T = TypeVar("T")


def is_disconnect(exc: BaseException) -> bool:
    """Whether ``exc`` says the database is unreachable (refused, dropped, restarting, pool exhausted)."""
    if isinstance(exc, (OperationalError, InterfaceError, PoolTimeoutError)):
        return True
    return isinstance(exc, DBAPIError) and bool(exc.connection_invalidated)


def _log_wait(what: str) -> Callable[[RetryCallState], None]:
    def log(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else 0.0
        logger.warning("%s: database unavailable (%s); waiting %.1f s (attempt %d)", what,
                       type(exc).__name__, wait, state.attempt_number)
    return log


def wait_for_database(settings: EngineSettings, what: str, operation: Callable[[], T]) -> T:
    """``operation()``, retried while the database is unreachable (see module docstring)."""
    retrying = Retrying(
        retry=retry_if_exception(is_disconnect),
        wait=wait_exponential_jitter(multiplier=0.5, max=settings.db_wait_max_backoff, jitter=0.5),
        stop=stop_after_delay(settings.db_wait_seconds),
        before_sleep=_log_wait(what),
        reraise=True,
    )
    try:
        return retrying(operation)
    except Exception as exc:
        if is_disconnect(exc):
            raise DatabaseUnavailable(f"{what}: the database stayed unreachable for "
                                      f"{settings.db_wait_seconds:.0f} s ({type(exc).__name__})") from exc
        raise
