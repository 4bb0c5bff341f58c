"""Waiting out a database that refuses or drops connections (limit reached, restart, failover).

Claim, heartbeat, checkpoint, release and finalize run their statements through ``wait_for_database``: on a
disconnect-class error they back off (0.5 s doubling up to a few seconds, with jitter) and try again, for at
most ``EngineSettings.db_wait_seconds`` in all, then raise ``DatabaseUnavailable``. A database outage is never
a Celery retry (that ladder is for LLM outages) and never a crash. Errors that are not about the connection
(a constraint, a bug) are raised at once.
"""

from __future__ import annotations

import functools
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


def _log_wait(state: RetryCallState) -> None:
    what = state.args[0] if state.args else "database work"
    exc = state.outcome.exception() if state.outcome else None
    wait = state.next_action.sleep if state.next_action else 0.0
    logger.warning("%s: database unavailable (%s); waiting %.1f s (attempt %d)", what,
                   type(exc).__name__, wait, state.attempt_number)


def _run(_what: str, operation: Callable[[], T]) -> T:
    """``operation()``; ``what`` rides along as an argument so the shared ``_log_wait`` can name it."""
    return operation()


@functools.lru_cache(maxsize=8)
def _retrying(max_backoff: float, wait_seconds: float) -> Retrying:
    """One ``Retrying`` per wait policy, shared by every call and thread (tenacity keeps a call's state in
    thread-locals). A ``Retrying`` ends each call in a reference cycle, so one per call was garbage for the
    cycle collector at every checkpoint."""
    return Retrying(
        retry=retry_if_exception(is_disconnect),
        wait=wait_exponential_jitter(multiplier=0.5, max=max_backoff, jitter=0.5),
        stop=stop_after_delay(wait_seconds),
        before_sleep=_log_wait,
        reraise=True,
    )


def wait_for_database(settings: EngineSettings, what: str, operation: Callable[[], T]) -> T:
    """``operation()``, retried while the database is unreachable (see module docstring)."""
    retrying = _retrying(settings.db_wait_max_backoff, settings.db_wait_seconds)
    try:
        return retrying(_run, what, operation)
    except Exception as exc:
        if is_disconnect(exc):
            raise DatabaseUnavailable(f"{what}: the database stayed unreachable for "
                                      f"{settings.db_wait_seconds:.0f} s ({type(exc).__name__})") from exc
        raise
