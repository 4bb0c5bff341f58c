"""The process's one LISTEN connection: NOTIFY wake-ups for every consuming transport of the process.

Every publish notifies channel ``kombu`` with the queue name. One session-level connection per process listens
(it must not go through a transaction pooler: it uses the transport option ``direct_url`` when given) and hands
each queue name to the transports that consume it. Its socket is the readable file descriptor Celery's event
loop polls (``Transport.register_with_event_loop``); a blocking ``drain_events`` selects on it.

Losing the connection is not an error for consumers: subscribers are told (so an event loop stops polling the
socket before it is closed), they fall back to polling every queue, and the next use reconnects.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import weakref
from time import monotonic
from typing import Protocol

import psycopg

from app.db.connections import psycopg_connect_kwargs
from tasks.broker.connection import CONNECT_TIMEOUT, CONNECTION_ERRORS, backoff_delays, keep_inherited

logger = logging.getLogger(__name__)

NOTIFY_CHANNEL = "kombu"


class Subscriber(Protocol):
    """What a listener needs of a transport."""

    def on_notify(self, queues: set[str]) -> None: ...

    def on_listener_lost(self, fileno: int) -> None: ...

    def on_listener_ready(self) -> None: ...


class Listener:
    """One LISTEN connection for the whole process, fanned out to subscribing transports."""

    def __init__(self, conninfo: str) -> None:
        self.conninfo = conninfo
        self._pid = os.getpid()
        self._lock = threading.RLock()
        self._conn: psycopg.Connection | None = None
        self._subscribers: weakref.WeakSet = weakref.WeakSet()
        self._retry_at = 0.0
        self._delays = backoff_delays(0.5, 5.0)

    def subscribe(self, subscriber: Subscriber) -> None:
        self._subscribers.add(subscriber)

    def unsubscribe(self, subscriber: Subscriber) -> None:
        self._subscribers.discard(subscriber)
        if not self._subscribers:
            self.close()

    def fileno(self) -> int | None:
        """The socket to poll, connecting first if needed; None while the server cannot be reached."""
        with self._lock:
            if self._conn is None:
                if monotonic() < self._retry_at:
                    return None
                try:
                    conn = psycopg.connect(self.conninfo, autocommit=True, connect_timeout=CONNECT_TIMEOUT,
                                           **psycopg_connect_kwargs("listen"))
                    conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
                except CONNECTION_ERRORS as exc:
                    logger.warning("broker LISTEN connection unavailable (%s); polling meanwhile",
                                   type(exc).__name__)
                    self._retry_at = monotonic() + next(self._delays)
                    return None
                self._conn = conn
                self._delays = backoff_delays(0.5, 5.0)
                for subscriber in list(self._subscribers):
                    subscriber.on_listener_ready()  # anything sent before we listened
            return self._conn.pgconn.socket

    def read(self) -> None:
        """Consume what arrived on the socket and hand the notified queue names to every subscriber."""
        queues: set[str] = set()
        with self._lock:
            conn = self._conn
            if conn is None:
                return
            pgconn = conn.pgconn
            try:
                pgconn.consume_input()
                while (notify := pgconn.notifies()) is not None:
                    queues.add(notify.extra.decode())
            except psycopg.Error as exc:
                logger.warning("broker LISTEN connection lost (%s); reconnecting", type(exc).__name__)
                self.close()
                return
        if queues:
            for subscriber in list(self._subscribers):
                subscriber.on_notify(queues)

    def close(self) -> None:
        """Close the connection; subscribers stop polling its socket first (its number may be reused)."""
        with self._lock:
            conn, self._conn = self._conn, None
            if conn is None:
                return
            try:
                fileno = conn.pgconn.socket
            except psycopg.Error:
                fileno = -1
            for subscriber in list(self._subscribers):
                subscriber.on_listener_lost(fileno)
            if self._pid != os.getpid():
                keep_inherited(conn)
                return
            with contextlib.suppress(Exception):
                conn.close()


_listeners: dict[tuple[int, str], Listener] = {}
_listeners_lock = threading.Lock()


def process_listener(conninfo: str) -> Listener:
    """This process's listener for ``conninfo`` (a forked child gets its own)."""
    key = (os.getpid(), conninfo)
    with _listeners_lock:
        listener = _listeners.get(key)
        if listener is None:
            for stale in [k for k in _listeners if k[0] != key[0]]:
                keep_inherited(_listeners.pop(stale))  # the parent's: never touch its socket
            listener = _listeners[key] = Listener(conninfo)
        return listener
