"""A provider's requests-per-minute and in-flight limits, held per process or across the whole fleet.

``ProcessLimits`` keeps them in this process (a thread-safe even-spacing limiter and a semaphore).
``FleetLimits`` keeps them in PostgreSQL, so they hold across every worker process on every host:

- requests per minute: one row per provider holds the next free start slot; a caller takes the slot and moves
  it ``60 / rpm`` seconds on in one statement (the row lock orders callers), then sleeps until its slot. As with
  the in-process limiter, any 60-second window holds at most ``rpm`` request starts.
- in flight: one row per request at the provider, counted under a transaction-level advisory lock (which a
  PgBouncer transaction pooler carries); a holder that dies stops counting when its row expires.

Each is a short transaction on the process's pool: no connection is held while a request is in flight.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Protocol

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_delay, wait_exponential_jitter

from app.llm.ratelimit import SAFETY_MARGIN, RateLimiter

logger = logging.getLogger(__name__)
_HOST_TAG = socket.gethostname()[:20]

RESERVE_SLOT = text("""
    INSERT INTO llm_rate_slots (limiter, next_slot)
    VALUES (:limiter, clock_timestamp() + make_interval(secs => CAST(:interval AS float8)))
    ON CONFLICT (limiter) DO UPDATE
        SET next_slot = greatest(llm_rate_slots.next_slot, clock_timestamp())
                        + make_interval(secs => CAST(:interval AS float8))
    RETURNING extract(epoch FROM next_slot - clock_timestamp())::float8 - CAST(:interval AS float8)
""")
LOCK_LIMITER = text("SELECT pg_advisory_xact_lock(hashtext('litscreen:llm-inflight:' || CAST(:limiter AS text)))")
DROP_EXPIRED = text("DELETE FROM llm_inflight WHERE limiter = :limiter AND expires_at < clock_timestamp()")
TAKE_INFLIGHT = text("""
    INSERT INTO llm_inflight (holder, limiter, expires_at)
    SELECT CAST(:holder AS varchar), CAST(:limiter AS varchar),
           clock_timestamp() + make_interval(secs => CAST(:lease AS float8))
    WHERE (SELECT count(*) FROM llm_inflight WHERE limiter = CAST(:limiter AS varchar)) < CAST(:limit AS int)
    RETURNING holder
""")
RELEASE_INFLIGHT = text("DELETE FROM llm_inflight WHERE holder = :holder")
LOCAL_HOLDERS = text("SELECT holder FROM llm_inflight WHERE limiter = :limiter AND holder LIKE :prefix")
HOLDER_ID_CHARS = 36
POLL_SECONDS = 0.05       # first wait for a free in-flight place; doubles up to MAX_POLL_SECONDS
MAX_POLL_SECONDS = 0.5


class ProviderLimits(Protocol):
    """What the chat client asks of a provider's limits."""

    def request(self) -> Any:
        """A context manager: blocks until a request may start (an in-flight place and a start slot), and
        gives the place back when the request is done."""


class ProcessLimits:
    """The limits of one process: an even-spacing RPM limiter and a semaphore."""

    def __init__(self, rpm: int, max_concurrency: int) -> None:
        self.limiter = RateLimiter(rpm)
        self._places = threading.BoundedSemaphore(max_concurrency)

    @contextmanager
    def request(self) -> Iterator[None]:
        with self._places:
            self.limiter.acquire()
            yield


class FleetLimits:
    """The limits of the whole fleet, kept in PostgreSQL (``llm_rate_slots``, ``llm_inflight``).

    Taking a place and a start slot is one transaction; giving the place back is another.
    """

    def __init__(self, engine: Any, limiter: str, rpm: int, max_concurrency: int, lease_seconds: float,
                 wait_seconds: float = 300.0) -> None:
        if rpm < 1 or max_concurrency < 1:
            raise ValueError("rpm and max_concurrency must be at least 1")
        self.engine = engine
        # a database that refuses or drops connections (full, restarting) is waited out, as the engine does
        self._waiting = Retrying(retry=retry_if_exception(_is_disconnect),
                                 wait=wait_exponential_jitter(multiplier=0.5, max=5.0, jitter=0.5),
                                 stop=stop_after_delay(wait_seconds), before_sleep=_log_wait, reraise=True)
        self.limiter = limiter
        self.interval = 60.0 / rpm * SAFETY_MARGIN
        self.max_concurrency = max_concurrency
        self.lease_seconds = lease_seconds

    def _drop_dead_local_holders(self) -> int:
        """Free the places of holders on this host whose process is gone (a ``kill -9``ed pool child), without
        waiting for their leases to run out; holders on other hosts still expire by lease."""
        prefix = f"{_HOST_TAG}:"
        with self.engine.begin() as conn:
            holders = list(conn.execute(LOCAL_HOLDERS, {"limiter": self.limiter, "prefix": prefix + "%"}).scalars())
            dead = [h for h in holders if not _pid_alive(h[len(prefix):].split(":", 1)[0])]
            for holder in dead:
                conn.execute(RELEASE_INFLIGHT, {"holder": holder})
        return len(dead)

    def _try_take(self, holder: str) -> float | None:
        """Take an in-flight place and the next start slot: seconds until the slot, or None when the fleet's
        places are all taken."""
        params = {"limiter": self.limiter, "holder": holder, "lease": self.lease_seconds,
                  "limit": self.max_concurrency, "interval": self.interval}
        with self.engine.begin() as conn:
            conn.execute(LOCK_LIMITER, params)
            conn.execute(DROP_EXPIRED, params)
            if conn.execute(TAKE_INFLIGHT, params).first() is None:
                return None
            return float(conn.execute(RESERVE_SLOT, params).scalar_one())

    @contextmanager
    def request(self) -> Iterator[None]:
        holder = f"{_HOST_TAG}:{os.getpid()}:{uuid.uuid4().hex[:8]}"[:HOLDER_ID_CHARS]
        poll = POLL_SECONDS
        while (wait := self._waiting(self._try_take, holder)) is None:
            if self._waiting(self._drop_dead_local_holders):
                continue
            time.sleep(poll * (0.5 + random.random()))
            poll = min(MAX_POLL_SECONDS, poll * 2)
        try:
            if wait > 0:
                time.sleep(wait)
            yield
        finally:
            self._waiting(self._release, holder)

    def _release(self, holder: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(RELEASE_INFLIGHT, {"holder": holder})


def _log_wait(state: RetryCallState) -> None:
    exc = state.outcome.exception() if state.outcome else None
    logger.warning("provider limits: database unavailable (%s); waiting %.1f s (attempt %d)", type(exc).__name__,
                   state.next_action.sleep if state.next_action else 0.0, state.attempt_number)


def _pid_alive(pid_text: str) -> bool:
    try:
        os.kill(int(pid_text), 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    return True


def _is_disconnect(exc: BaseException) -> bool:
    """Whether ``exc`` says the database is unreachable (refused, dropped, restarting, pool exhausted)."""
    if isinstance(exc, (OperationalError, InterfaceError, PoolTimeoutError)):
        return True
    return isinstance(exc, DBAPIError) and bool(exc.connection_invalidated)


def limiter_name(provider: str, base_url: str) -> str:
    """The shared key of a provider account's limits: its name and endpoint."""
    return f"{provider}|{base_url}"[:300]
