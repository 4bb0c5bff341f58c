"""The broker's database connection: one per process, shared by every transport, waiting out a refusing server.

kombu creates a transport per ``Connection`` (Celery's consumer, its event dispatcher, every pooled producer
connection, every ``inspect`` call in Flower), and each used to hold its own socket. Here all transports of a
process that talk to the same database share one autocommit psycopg connection behind a lock, so a process holds
one broker connection (plus the LISTEN one, see ``listener.py``) however many kombu connections it makes.

A server that refuses connections (``too many clients``, restarting, failing over) is waited for with short
bounded backoff and jitter, up to ``reconnect_wait`` seconds per attempt to connect; idempotent statements (fetch,
ack, restore, renew, touch) are re-run once on a fresh connection when theirs was dropped under them.

Processes that only publish (pool children, gunicorn workers: ``publish_only_process``) open no broker
connection at all: each statement borrows a connection of the process's application pool
(``app.db.pool.lender_for``), in autocommit, and gives it back at once — so such a process never holds more than
its ``DB_POOL_SIZE`` (README "Connection budget"). Without an application engine on the same database they keep
a connection of their own and close it after ``IDLE_RELEASE_SECONDS`` without a statement.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import select
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import psycopg
from psycopg.pq import TransactionStatus
from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import PoolProxiedConnection

from app.db.connections import application_name, process_role, psycopg_connect_kwargs
from app.db.pool import lender_for

logger = logging.getLogger(__name__)

T = TypeVar("T")

CONNECTION_ERRORS: tuple[type[Exception], ...] = (psycopg.OperationalError, psycopg.InterfaceError)
CONNECT_TIMEOUT = 5  # seconds for one TCP connect + authentication attempt
IDLE_RELEASE_SECONDS = 2.0  # a publish-only process with nothing to borrow from closes its own after this long unused
PUBLISH_ONLY_ROLES = ("pool-child", "maintenance-child", "web")


def publish_only_process() -> bool:
    """Whether this process only publishes (never consumes): a prefork pool child or a web worker."""
    return process_role() in PUBLISH_ONLY_ROLES


def libpq_conninfo(sqlalchemy_url: str) -> str:
    """A libpq connection string for a SQLAlchemy PostgreSQL URL (``postgresql+psycopg://...``)."""
    url = make_url(sqlalchemy_url)
    if url.get_backend_name() != "postgresql":
        raise ValueError(f"the litpg transport needs a PostgreSQL URL, got {url.get_backend_name()!r}")
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def worker_shutting_down() -> bool:
    """Whether this process is a Celery worker asked to shut down (warm or cold)."""
    state = sys.modules.get("celery.worker.state")
    if state is None:
        return False
    return any(flag is not None and flag is not False for flag in (state.should_stop, state.should_terminate))


def backoff_delays(first: float = 0.1, cap: float = 2.0) -> Iterator[float]:
    """Exponential delays from ``first`` to ``cap`` seconds, each jittered to 50–100 % (no thundering herd)."""
    delay = first
    while True:
        yield delay / 2 + random.uniform(0, delay / 2)  # jitter, not cryptography
        delay = min(cap, delay * 2)


def wait_for_server(open_connection: Callable[[], T], who: str, wait: float) -> T:
    """``open_connection()``; while the server refuses (``psycopg.OperationalError``), retried with backoff for up
    to ``wait`` seconds (not once the worker is shutting down), then the refusal is raised."""
    deadline = time.monotonic() + wait
    delays = backoff_delays()
    warned = False
    while True:
        try:
            opened = open_connection()
            if warned:
                logger.warning("broker database reachable again (%s)", who)
            return opened
        except psycopg.OperationalError as exc:
            delay = next(delays)
            if time.monotonic() + delay > deadline or worker_shutting_down():
                raise
            if not warned:
                logger.warning("broker database refuses connections (%s); waiting: %s", who,
                               str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__)
                warned = True
            time.sleep(delay)


def connect(conninfo: str, purpose: str, wait: float) -> psycopg.Connection:
    """An autocommit connection named for this process and ``purpose`` (no server-side prepared statements behind
    a transaction pooler); a refusing server is retried with backoff for up to ``wait`` seconds."""
    connect_kwargs = psycopg_connect_kwargs(purpose)
    return wait_for_server(
        lambda: psycopg.connect(conninfo, autocommit=True, connect_timeout=CONNECT_TIMEOUT, **connect_kwargs),
        connect_kwargs["application_name"], wait)


def _has_pending_input(conn: psycopg.Connection) -> bool:
    """Whether the server sent something to an idle connection (nothing is expected: a farewell or EOF)."""
    try:
        readable, _, _ = select.select([conn.pgconn.socket], [], [], 0)
    except (OSError, ValueError, psycopg.Error):
        return True
    return bool(readable)


class SharedConnection:
    """One autocommit connection shared (behind a lock) by every transport of this process on one database."""

    def __init__(self, conninfo: str, purpose: str = "broker", reconnect_wait: float = 60.0) -> None:
        self.conninfo = conninfo
        self.purpose = purpose
        self.reconnect_wait = reconnect_wait
        self.lock = threading.RLock()
        self._pid = os.getpid()
        self._conn: psycopg.Connection | None = None
        self._last_used = time.monotonic()
        self._reaper: threading.Thread | None = None

    def connection(self) -> psycopg.Connection:
        """The open connection (connecting, or waiting for the server, first if needed). Hold ``lock``."""
        self._last_used = time.monotonic()
        if self._conn is not None and (self._conn.closed or _has_pending_input(self._conn)):
            # An idle connection with something to read was closed by the server (restart, terminate): its
            # farewell is waiting. Reconnect before sending anything, so no statement is lost with it.
            self.discard()
        if self._conn is None:
            self._conn = connect(self.conninfo, self.purpose, self.reconnect_wait)
            if publish_only_process() and (self._reaper is None or not self._reaper.is_alive()):
                self._reaper = threading.Thread(target=self._release_when_idle, name="litpg-idle-release",
                                                daemon=True)
                self._reaper.start()
        return self._conn

    def _release_when_idle(self) -> None:
        """Close the connection once it went unused for ``IDLE_RELEASE_SECONDS``; stop until it reconnects."""
        while True:
            time.sleep(IDLE_RELEASE_SECONDS / 2)
            if self._pid != os.getpid():
                return
            with self.lock:
                if self._conn is None:
                    return
                if time.monotonic() - self._last_used >= IDLE_RELEASE_SECONDS:
                    self.discard()
                    return

    def lender(self) -> Engine | None:
        """The application engine this process's broker statements borrow connections from (publish-only
        processes with an application engine on the same database), else None."""
        return lender_for(self.conninfo) if publish_only_process() else None

    def execute(self, sql: str, params: dict[str, Any] | None = None, fetch: bool = False,
                retry: bool = False) -> Any:
        """Run one statement; the fetched rows if ``fetch``, else the row count.

        ``retry``: the statement is idempotent; when the connection is lost under it, run it once more on a
        fresh connection (which waits for the server) instead of raising.
        """
        for attempt in (1, 2):
            try:
                with self.locked() as conn:
                    cursor = conn.execute(sql, params)
                    return cursor.fetchall() if fetch else cursor.rowcount
            except CONNECTION_ERRORS:
                if not retry or attempt == 2:
                    raise
                logger.warning("broker connection lost; running the statement again on a new one")
        raise AssertionError("unreachable")  # pragma: no cover

    @contextlib.contextmanager
    def borrowed(self, lender: Engine) -> Iterator[psycopg.Connection]:
        """A connection of ``lender``'s pool in autocommit for a block of statements, given back afterwards."""
        pooled = self._checkout(lender)
        conn = pooled.driver_connection
        assert isinstance(conn, psycopg.Connection)
        try:
            if conn.info.transaction_status != TransactionStatus.IDLE:
                conn.rollback()
            conn.autocommit = True
            yield conn
        except CONNECTION_ERRORS:
            pooled.invalidate()
            raise
        finally:
            if pooled.is_valid and not conn.closed:
                try:
                    conn.autocommit = False  # what SQLAlchemy expects of its pooled connections
                except CONNECTION_ERRORS:
                    pooled.invalidate()
            pooled.close()

    def _checkout(self, lender: Engine) -> PoolProxiedConnection:
        """A pooled connection; a refusing server is waited for like ``connect`` does."""
        def checkout() -> PoolProxiedConnection:
            try:
                return lender.raw_connection()
            except DBAPIError as exc:  # the driver's refusal, as the unborrowed path raises it
                if isinstance(exc.orig, psycopg.OperationalError):
                    raise exc.orig from exc
                raise

        return wait_for_server(checkout, application_name("app"), self.reconnect_wait)

    @contextlib.contextmanager
    def locked(self) -> Iterator[psycopg.Connection]:
        """The shared connection for a block of statements (the lock held throughout; lost: discarded)."""
        lender = self.lender()
        if lender is not None:
            with self.borrowed(lender) as conn:
                yield conn
            return
        with self.lock:
            conn = self.connection()
            try:
                yield conn
            except CONNECTION_ERRORS:
                self.discard()
                raise

    def discard(self) -> None:
        """Drop the connection (closing it only in the process that opened it); the next use reconnects."""
        with self.lock:
            conn, self._conn = self._conn, None
            if conn is None:
                return
            if self._pid != os.getpid():
                keep_inherited(conn)
                return
            with contextlib.suppress(Exception):
                conn.close()


_shared: dict[tuple[int, str], SharedConnection] = {}
_shared_lock = threading.Lock()
# What a forked child inherited from its parent: kept referenced, never closed or collected, because finishing
# a libpq connection sends the server a Terminate message on the socket the parent still uses.
_inherited: list[object] = []


def keep_inherited(thing: object) -> None:
    """Keep something a forked child inherited (a connection, or an object holding one) alive, untouched."""
    _inherited.append(thing)


def shared_connection(conninfo: str, reconnect_wait: float = 60.0) -> SharedConnection:
    """This process's shared broker connection for ``conninfo`` (a forked child gets its own)."""
    key = (os.getpid(), conninfo)
    with _shared_lock:
        shared = _shared.get(key)
        if shared is None:
            for stale in [k for k in _shared if k[0] != key[0]]:
                keep_inherited(_shared.pop(stale))  # the parent's: never touch its sockets
            shared = _shared[key] = SharedConnection(conninfo, reconnect_wait=reconnect_wait)
        shared.reconnect_wait = max(shared.reconnect_wait, reconnect_wait)
        return shared
