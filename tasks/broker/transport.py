"""The broker transport: kombu's SQLAlchemy transport on PostgreSQL, driven by Celery's event loop like Redis.

The transport owns this process's view of the broker: the shared connection (``connection.py``), the LISTEN
wake-ups (``listener.py``), the deliveries it holds (renewed by ``keeper.py``) and the queues it consumes. Two
ways to consume:

* **Celery's event loop** (``asynloop``, what a worker uses: ``implements.asynchronous``): Celery calls
  ``register_with_event_loop``; the LISTEN socket and a wake-up pipe are registered as readers (``on_readable``
  fetches what a notification or a freed prefetch slot made ready), and a repeating timer re-polls every consumed
  queue each ``polling_interval`` seconds (messages made visible again by housekeeping, countdowns, a missed
  notification). Shutdown, pool results and signals are the event loop's business, as with Redis.
* **Blocking** ``drain_events`` (Flower, ``celery inspect``, kombu consumers in tests): selects on the same two
  file descriptors, waking at least every ``MAX_WAIT`` seconds.

A worker asked to shut down fetches nothing new; a message fetched in the same instant is handed back at once.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import time
import weakref
from queue import Empty
from time import monotonic
from typing import Any

import psycopg
from celery import signals as celery_signals
from kombu.transport import sqlalchemy as sqla_transport
from kombu.transport import virtual
from sqlalchemy.exc import OperationalError as SAOperationalError

from tasks.broker.channel import Channel, parse_delivery_tag
from tasks.broker.connection import (
    SharedConnection,
    libpq_conninfo,
    shared_connection,
    worker_shutting_down,
)
from tasks.broker.keeper import process_keeper
from tasks.broker.listener import Listener, process_listener

logger = logging.getLogger(__name__)

MAX_WAIT = 0.25  # longest single wait of a blocking drain_events
DELIVER_BATCH = 64  # most messages delivered per event-loop callback (the loop stays responsive)

# Transports of this process that consume: woken when the worker is asked to shut down.
_consuming_transports: weakref.WeakSet[Transport] = weakref.WeakSet()


def _wake_on_shutdown_request(**_kwargs: Any) -> None:
    """Celery's SIGTERM/SIGINT handler sends ``worker_shutting_down``: waking our waits lets the worker start its
    shutdown now."""
    for transport in list(_consuming_transports):
        transport.wake()


celery_signals.worker_shutting_down.connect(_wake_on_shutdown_request, weak=False, dispatch_uid="litpg-wake")


class Transport(sqla_transport.Transport):
    """kombu's SQLAlchemy transport on PostgreSQL with persisted bindings, fanout, expiry and acks that mean it."""

    Channel = Channel

    driver_type = "postgresql"
    driver_name = "psycopg"
    polling_interval = 2.0
    visibility_timeout = 300.0
    housekeeping_interval = 30.0
    reconnect_wait = 60.0
    connection_errors = (  # type: ignore[assignment]  # kombu declares the stock transport's one-tuple
        SAOperationalError, psycopg.OperationalError, psycopg.InterfaceError)
    cycle: Any  # kombu's FairCycle over channels, set by virtual.Transport.__init__

    implements = virtual.Transport.implements.extend(
        asynchronous=True, exchange_type=frozenset(["direct", "topic", "fanout"]))

    def __init__(self, client: Any, **kwargs: Any) -> None:
        super().__init__(client, **kwargs)
        options = client.transport_options
        self.visibility_timeout = float(options.get("visibility_timeout", self.visibility_timeout))
        self.housekeeping_interval = float(options.get("housekeeping_interval", self.housekeeping_interval))
        self.reconnect_wait = float(options.get("reconnect_wait", self.reconnect_wait))
        self.listen = bool(options.get("listen", True))
        # Celery's event exchange: events nobody is bound to are dropped without a round trip, re-checked
        # every event_binding_ttl seconds (events are lossy by design; task and control messages never are).
        self.event_exchanges = frozenset(options.get("event_exchanges", ("celeryev",)))
        self.event_binding_ttl = float(options.get("event_binding_ttl", 1.0))
        self.unrouted_until: dict[tuple[str, str], float] = {}
        self.polling_interval = float(self.polling_interval)
        self.conninfo = libpq_conninfo(client.hostname)
        # LISTEN needs a session: with a transaction pooler in front of the broker URL, ``direct_url`` reaches
        # the server itself (DATABASE_DIRECT_URL); else the broker URL is used.
        direct_url = options.get("direct_url")
        self.listen_conninfo = libpq_conninfo(direct_url.split("litpg+", 1)[-1]) if direct_url else self.conninfo
        self.declared_queues: dict[str, dict[str, Any]] = {}
        self.maybe_ready: set[str] = set()
        self._pid = os.getpid()
        self._wake_r: int | None = None
        self._wake_w: int | None = None
        self._consumed: dict[str, int] = {}
        self._held: set[str] = set()
        self._next_full_poll = 0.0
        self._listener: Listener | None = None
        self._loop: Any = None
        self._loop_fds: set[int] = set()
        self._poll_timer: Any = None

    # -- database access ---------------------------------------------------------------------------------------

    @property
    def shared(self) -> SharedConnection:
        """This process's broker connection (shared with every other transport on the same database)."""
        return shared_connection(self.conninfo, self.reconnect_wait)

    def execute(self, sql: str, params: dict[str, Any] | None = None, fetch: bool = False,
                retry: bool = False) -> Any:
        """Run one statement (autocommit); the fetched rows if ``fetch``, else the row count.

        ``retry``: idempotent, so run it again once on a new connection if the connection is lost under it.
        """
        return self.shared.execute(sql, params, fetch=fetch, retry=retry)

    def establish_connection(self) -> Any:
        self.execute("SELECT 1")  # waits for a refusing server, then raises where kombu retries
        return super().establish_connection()

    def close_connection(self, connection: Any) -> None:
        """Close channels (restoring unacked deliveries) and stop consuming; the shared connection stays."""
        process_keeper().unregister(self)
        _consuming_transports.discard(self)
        try:
            super().close_connection(connection)
        finally:
            self._unregister_from_loop()
            if self._listener is not None:
                self._listener.unsubscribe(self)
                self._listener = None
            self._held.clear()
            self._consumed.clear()
            self.maybe_ready.clear()
            wake_r, wake_w, self._wake_r, self._wake_w = self._wake_r, self._wake_w, None, None
            if self._pid == os.getpid():
                for fd in (wake_r, wake_w):
                    if fd is not None:
                        with contextlib.suppress(OSError):
                            os.close(fd)

    # -- deliveries held and queues consumed by this transport --------------------------------------------------

    def hold(self, delivery_tag: str) -> None:
        self._held.add(delivery_tag)

    def release(self, delivery_tag: Any) -> None:
        self._held.discard(str(delivery_tag))
        self.wake()

    def held_deliveries(self) -> list[tuple[int, int]]:
        """``(message id, delivery number)`` of every delivery fetched and not yet acked or restored."""
        return [parsed for tag in list(self._held) if (parsed := parse_delivery_tag(tag)) is not None]

    def consumed_queues(self) -> list[str]:
        return list(self._consumed)

    def wake(self) -> None:
        """Interrupt a wait (an ack freed a prefetch slot, the prefetch limit grew, shutdown was requested)."""
        wake_w = self._wake_w
        if wake_w is None:
            return
        with contextlib.suppress(OSError):
            os.write(wake_w, b"x")

    def forget_queue(self, queue: str) -> None:
        self.declared_queues.pop(queue, None)
        self.maybe_ready.discard(queue)
        self.state.queue_bindings_delete(queue)
        for exchange in self.state.exchanges.values():  # type: ignore[union-attr]  # kombu types it Optional
            table = exchange.get("table")
            if table:
                table[:] = [meta for meta in table if meta[2] != queue]

    def start_consuming(self, queue: str) -> None:
        self._consumed[queue] = self._consumed.get(queue, 0) + 1
        self.maybe_ready.add(queue)
        if self._wake_r is None:
            self._wake_r, self._wake_w = os.pipe()
            os.set_blocking(self._wake_r, False)
            os.set_blocking(self._wake_w, False)
        _consuming_transports.add(self)
        if self._pid == os.getpid():
            process_keeper().register(self)
            if self.listen and self._listener is None:
                self._listener = process_listener(self.listen_conninfo)
                self._listener.subscribe(self)
        self.wake()

    def stop_consuming(self, queue: str) -> None:
        count = self._consumed.get(queue, 0) - 1
        if count <= 0:
            self._consumed.pop(queue, None)
        else:
            self._consumed[queue] = count

    # -- listener callbacks (any thread) --------------------------------------------------------------------------

    def on_notify(self, queues: set[str]) -> None:
        ready = queues.intersection(self._consumed)
        if ready:
            self.maybe_ready.update(ready)
            self.wake()

    def on_listener_ready(self) -> None:
        self.maybe_ready.update(self._consumed)
        self.wake()

    def on_listener_lost(self, fileno: int) -> None:
        if self._loop is not None and fileno in self._loop_fds:
            self._loop.remove_reader(fileno)
            self._loop_fds.discard(fileno)
        self.maybe_ready.update(self._consumed)

    # -- what to wait on ----------------------------------------------------------------------------------------

    def _wait_fds(self) -> list[int]:
        fds = [self._wake_r] if self._wake_r is not None else []
        if self._listener is not None and self._consumed:
            listener_fd = self._listener.fileno()
            if listener_fd is not None:
                fds.append(listener_fd)
        return fds

    def _handle_readable(self, fileno: int) -> None:
        if fileno == self._wake_r:
            with contextlib.suppress(OSError):
                os.read(fileno, 4096)
        elif self._listener is not None:
            self._listener.read()

    def _maybe_full_poll(self) -> None:
        now = monotonic()
        if now >= self._next_full_poll or self._listener is None:
            self.maybe_ready.update(self._consumed)
            self._next_full_poll = now + self.polling_interval

    # -- Celery's event loop (asynloop) -------------------------------------------------------------------------

    def register_with_event_loop(self, connection: Any, loop: Any) -> None:
        """Poll the wake-up pipe and the LISTEN socket from Celery's event loop, and re-poll on a timer."""
        self._unregister_from_loop()
        self._loop = loop
        loop.on_tick.add(self.on_poll_start)
        interval = max(0.05, min(1.0, self.polling_interval / 2))
        self._poll_timer = loop.call_repeatedly(interval, self.on_poll_timer)

    def _unregister_from_loop(self) -> None:
        loop, self._loop = self._loop, None
        if loop is None:
            return
        loop.on_tick.discard(self.on_poll_start)
        for fd in list(self._loop_fds):
            with contextlib.suppress(Exception):
                loop.remove_reader(fd)
        self._loop_fds.clear()
        if self._poll_timer is not None:
            self._poll_timer.cancel()
            self._poll_timer = None

    def on_poll_start(self) -> None:
        """Each loop iteration: make sure our file descriptors are registered (the LISTEN socket may be new)."""
        loop = self._loop
        if loop is None:
            return
        for fd in self._wait_fds():
            if fd not in self._loop_fds:
                loop.add_reader(fd, self.on_readable, fd)
                self._loop_fds.add(fd)

    def on_readable(self, fileno: int) -> None:  # type: ignore[override]  # as kombu's Redis transport
        """A notification arrived or the pipe was written: deliver what became ready."""
        self._handle_readable(fileno)
        self._deliver_ready()

    def on_poll_timer(self) -> None:
        """The safety poll: every ``polling_interval`` seconds every consumed queue is fetched from once."""
        self._maybe_full_poll()
        self._deliver_ready()

    def _deliver_ready(self) -> None:
        if worker_shutting_down():
            return
        for _ in range(DELIVER_BATCH):
            try:
                self.cycle.get(self._deliver)
            except Empty:
                return

    # -- blocking consumption (drain_events) --------------------------------------------------------------------

    def drain_events(self, connection: Any, timeout: float | None = None) -> None:  # type: ignore[override]
        start = monotonic()
        while True:
            if worker_shutting_down():
                raise TimeoutError()  # a stopping worker starts nothing new; queued messages stay visible
            fds = self._wait_fds()
            self._maybe_full_poll()
            try:
                self.cycle.get(self._deliver, timeout=timeout)
                return
            except Empty:
                pass
            elapsed = monotonic() - start
            if timeout is not None and elapsed >= timeout:
                raise TimeoutError()
            wait = min(MAX_WAIT, max(0.0, self._next_full_poll - monotonic()))
            if timeout is not None:
                wait = min(wait, timeout - elapsed)
            self._wait(fds, wait)

    def _wait(self, fds: list[int], timeout: float) -> None:
        if not fds:
            time.sleep(timeout)
            return
        try:
            readable, _, _ = select.select(fds, [], [], timeout)
        except (OSError, ValueError):
            time.sleep(min(timeout, 0.1))
            return
        for fd in readable:
            self._handle_readable(fd)
