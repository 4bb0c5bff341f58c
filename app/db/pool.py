"""A connection pool that lends an open connection when the server refuses a new one.

A process's threads share a small pool (``DB_POOL_SIZE``). SQLAlchemy's ``QueuePool`` opens its connections
lazily, so a thread that finds none idle opens a new one — and when the server is full ("too many clients") that
checkout fails, although the pool already holds an open connection another thread will give back in
milliseconds. ``LendingQueuePool`` then waits (up to ``DB_POOL_TIMEOUT``) for that connection instead: a full
server costs the process a short wait, not a failed statement. With no connection of its own open, the refusal
is raised as before (and waited out by the caller, ``app/services/engine/waits.py``).

A process that only publishes to the broker (a pool child, a web worker) sends its broker statements on a
connection borrowed from this pool (``lender_for``, used by ``tasks/broker/connection.py``), so it holds no
connection beyond its ``DB_POOL_SIZE``.
"""

from __future__ import annotations

import logging
import threading
import weakref

from sqlalchemy import Engine
from sqlalchemy.engine import URL, make_url
from sqlalchemy.pool import ConnectionPoolEntry, QueuePool
from sqlalchemy.util import queue as sqla_queue

logger = logging.getLogger(__name__)


class LendingQueuePool(QueuePool):
    """``QueuePool`` that, when opening a connection fails, waits for one of its own to be checked in."""

    def _do_get(self) -> ConnectionPoolEntry:
        try:
            return super()._do_get()
        except Exception:
            if self.checkedout() == 0:  # nothing of ours is open: nobody could lend one
                raise
            logger.info("database refused a new connection; waiting for one of this process's %d open ones",
                        self.checkedout())
            try:
                return self._pool.get(True, self._timeout)
            except sqla_queue.Empty:
                pass
            raise


_lenders: dict[str, weakref.ReferenceType[Engine]] = {}
_lenders_lock = threading.Lock()


def _server_key(url: str | URL) -> str:
    """One database, whatever the driver name in its URL (the broker's URL has none)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def offer_connections(engine: Engine) -> None:
    """Let this process's broker borrow connections of ``engine``'s pool (the latest engine per database wins)."""
    with _lenders_lock:
        _lenders[_server_key(engine.url)] = weakref.ref(engine)


def lender_for(url: str) -> Engine | None:
    """The application engine of this process on the database at ``url`` (a libpq or SQLAlchemy URL), if any."""
    with _lenders_lock:
        ref = _lenders.get(_server_key(url))
    return ref() if ref is not None else None
