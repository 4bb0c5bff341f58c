"""The PostgreSQL broker: kombu's SQLAlchemy transport, extended so Celery works fully on PostgreSQL alone.

Selected by the broker URL ``litpg+postgresql+psycopg://...`` (``celeryconfig.broker_url_for`` registers the
alias in ``kombu.transport.TRANSPORT_ALIASES``). It keeps kombu's tables (``kombu_queue``, ``kombu_message``,
created by the migrations, never by the transport) and adds what stock kombu lacks:

* bindings persisted in ``kombu_binding``, so direct, topic and **fanout** routing work across processes (remote
  control, ``celery inspect``, revoke, events for Flower); routing happens in one SQL statement;
* a driver type (``postgresql``) that Celery does not switch events off for;
* fetch with ``FOR UPDATE SKIP LOCKED``; **delete on ack**; messages of ``no_ack`` consumers (events, remote
  control) are deleted as they are read;
* a **visibility timeout**: a fetched, unacked message carries a deadline; a live consumer renews the deadlines of
  the messages it holds, so a message is never delivered twice while its worker lives, and a killed worker's
  messages become visible again once their deadline passes (``acks_late`` means what it says);
* queue expiry (``x-expires``) and message TTL (``x-message-ttl``): a dead consumer's queue, bindings and
  messages are removed; live consumers touch their queues;
* events (exchange ``celeryev``) that nobody is bound to cost no round trip: "no route" is remembered for a
  second per routing key (events are lossy by design; task and control messages are always routed);
* LISTEN/NOTIFY wake-ups (every insert notifies channel ``kombu`` with the queue name) and no sleep while
  messages wait or after an ack frees a prefetch slot; ``polling_interval`` is the safety poll of idle queues;
* queue rows created by upsert (simultaneous worker starts cannot race), and transport options that work:
  ``polling_interval``, ``visibility_timeout``, ``housekeeping_interval``, ``listen``.

Delivery tags are ``"<message id>.<delivery number>"``, so an ack, renewal or requeue touches exactly the
delivery it belongs to. This module touches kombu's virtual-transport internals: kombu/celery are pinned to
tested minor versions in pyproject.toml.
"""

from __future__ import annotations

import logging
import os
import select
import sys
import threading
import time
import weakref
from json import dumps, loads
from queue import Empty
from time import monotonic
from typing import Any

import psycopg
from celery import signals as celery_signals
from kombu.transport import sqlalchemy as sqla_transport
from kombu.transport import virtual
from kombu.transport.base import to_rabbitmq_queue_arguments
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError as SAOperationalError

from app.services.maintenance import BROKER_HOUSEKEEPING_LOCK, broker_housekeeping_sql

logger = logging.getLogger(__name__)

NOTIFY_CHANNEL = "kombu"

# --- SQL (psycopg, %(name)s parameters; single statements in autocommit mode) ---------------------------------

UPSERT_QUEUE = """
INSERT INTO kombu_queue (name, expires_ms, message_ttl_ms, last_used_at)
VALUES (%(queue)s, %(expires)s, %(ttl)s, now())
ON CONFLICT (name) DO UPDATE
SET expires_ms = EXCLUDED.expires_ms, message_ttl_ms = EXCLUDED.message_ttl_ms, last_used_at = now()
"""

UPSERT_BINDING = """
INSERT INTO kombu_binding (exchange, exchange_type, routing_key, pattern, queue)
VALUES (%(exchange)s, %(type)s, %(routing_key)s, %(pattern)s, %(queue)s)
ON CONFLICT (exchange, routing_key, pattern, queue) DO UPDATE SET exchange_type = EXCLUDED.exchange_type
"""

_INSERT_INTO_TARGETS = """
ins AS (
    INSERT INTO kombu_message (visible, timestamp, payload, version, queue_id, expires_at)
    SELECT true, timezone('utc', now()), %(payload)s, 1, t.id,
           now() + t.message_ttl_ms * interval '1 millisecond'
    FROM targets t
    RETURNING queue_id
)
SELECT pg_notify('kombu', t.name) FROM targets t
"""

PUT = """
WITH targets AS (SELECT id, name, message_ttl_ms FROM kombu_queue WHERE name = %(queue)s),
""" + _INSERT_INTO_TARGETS

ROUTE = """
WITH targets AS (
    SELECT DISTINCT q.id, q.name, q.message_ttl_ms
    FROM kombu_binding b JOIN kombu_queue q ON q.name = b.queue
    WHERE b.exchange = %(exchange)s
      AND (b.exchange_type = 'fanout'
           OR (b.exchange_type = 'topic' AND %(routing_key)s ~ b.pattern)
           OR (b.exchange_type NOT IN ('fanout', 'topic') AND b.routing_key = %(routing_key)s))
),
""" + _INSERT_INTO_TARGETS

_NEXT_READY = """
SELECT id FROM kombu_message
WHERE queue_id = (SELECT id FROM kombu_queue WHERE name = %(queue)s)
  AND visible AND (expires_at IS NULL OR expires_at > now())
ORDER BY id LIMIT 1
FOR UPDATE SKIP LOCKED
"""

FETCH = f"""
UPDATE kombu_message
SET visible = false, deliveries = deliveries + 1,
    deadline = now() + %(visibility_timeout)s * interval '1 second'
WHERE id = ({_NEXT_READY})
RETURNING id, payload, deliveries
"""

FETCH_NO_ACK = f"""
DELETE FROM kombu_message WHERE id = ({_NEXT_READY})
RETURNING id, payload, deliveries + 1
"""

ACK = "DELETE FROM kombu_message WHERE id = %(id)s AND deliveries = %(deliveries)s"

RESTORE = """
WITH restored AS (
    UPDATE kombu_message SET visible = true, deadline = NULL
    WHERE id = %(id)s AND deliveries = %(deliveries)s AND NOT visible
    RETURNING queue_id
)
SELECT pg_notify('kombu', q.name) FROM restored r JOIN kombu_queue q ON q.id = r.queue_id
"""

RENEW = """
UPDATE kombu_message m SET deadline = now() + %(visibility_timeout)s * interval '1 second'
FROM unnest(%(ids)s::int[], %(deliveries)s::int[]) AS held(id, deliveries)
WHERE m.id = held.id AND m.deliveries = held.deliveries AND NOT m.visible
"""

TOUCH = """
UPDATE kombu_queue SET last_used_at = now() WHERE name = ANY(%(queues)s) RETURNING name
"""

SIZE = """
SELECT count(*) FROM kombu_message
WHERE queue_id = (SELECT id FROM kombu_queue WHERE name = %(queue)s) AND visible
"""

PURGE = """
DELETE FROM kombu_message WHERE queue_id = (SELECT id FROM kombu_queue WHERE name = %(queue)s) AND visible
"""

DELETE_QUEUE = """
WITH b AS (DELETE FROM kombu_binding WHERE queue = %(queue)s)
DELETE FROM kombu_queue WHERE name = %(queue)s
"""

HAS_QUEUE = "SELECT EXISTS (SELECT 1 FROM kombu_queue WHERE name = %(queue)s)"

BINDINGS_OF = "SELECT routing_key, pattern, queue FROM kombu_binding WHERE exchange = %(exchange)s"


MAX_WAIT = 0.25  # longest single wait: a Celery worker notices a shutdown request this fast


def _worker_shutting_down() -> bool:
    """Whether this process is a Celery worker asked to shut down (warm or cold).

    Such a worker gets control back from ``drain_events`` at once and receives nothing more: Celery's blocking
    loop (``celery.worker.loops.synloop``) calls ``drain_events`` once more *after* it saw the shutdown flag,
    and a message fetched there would be handed to the pool and run by a worker that is stopping.
    """
    state = sys.modules.get("celery.worker.state")
    if state is None:
        return False
    return any(flag is not None and flag is not False for flag in (state.should_stop, state.should_terminate))


# Transports of this process that consume: woken when the worker is asked to shut down.
_consuming_transports: weakref.WeakSet[Transport] = weakref.WeakSet()


def _wake_on_shutdown_request(**_kwargs: Any) -> None:
    """Celery's SIGTERM/SIGINT handler sends ``worker_shutting_down`` (then sets the flag, before the interrupted
    wait resumes): waking our wait lets the worker start its shutdown now instead of after up to MAX_WAIT."""
    for transport in list(_consuming_transports):
        transport.wake()


celery_signals.worker_shutting_down.connect(_wake_on_shutdown_request, weak=False, dispatch_uid="litpg-wake")


def libpq_conninfo(sqlalchemy_url: str) -> str:
    """A libpq connection string for a SQLAlchemy PostgreSQL URL (``postgresql+psycopg://...``)."""
    url = make_url(sqlalchemy_url)
    if url.get_backend_name() != "postgresql":
        raise ValueError(f"the litpg transport needs a PostgreSQL URL, got {url.get_backend_name()!r}")
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def parse_delivery_tag(tag: Any) -> tuple[int, int] | None:
    """``(message id, delivery number)`` of one of our delivery tags, else None."""
    try:
        message_id, deliveries = str(tag).split(".", 1)
        return int(message_id), int(deliveries)
    except ValueError:
        return None


class Channel(sqla_transport.Channel):
    """A channel whose every operation is one SQL statement on the transport's connection."""

    supports_fanout = True
    connection: Transport

    def __init__(self, connection: Transport, **kwargs: Any) -> None:
        super().__init__(connection, **kwargs)
        self._pid = os.getpid()
        self._no_ack_queues: set[str] = set()

    # -- queues and bindings -----------------------------------------------------------------------------------

    def prepare_queue_arguments(self, arguments: dict | None, **kwargs: Any) -> dict:
        """``expires``/``message_ttl`` of a kombu Queue as ``x-expires``/``x-message-ttl`` (as on RabbitMQ)."""
        return to_rabbitmq_queue_arguments(arguments or {}, **kwargs)

    def _new_queue(self, queue: str, **kwargs: Any) -> None:
        arguments = kwargs.get("arguments") or {}
        expires, ttl = arguments.get("x-expires"), arguments.get("x-message-ttl")
        self.connection.declared_queues[queue] = {
            "expires": int(expires) if expires is not None else None,
            "ttl": int(ttl) if ttl is not None else None,
            "auto_delete": bool(kwargs.get("auto_delete")),
        }
        self.connection.execute(UPSERT_QUEUE, {"queue": queue, "expires": expires, "ttl": ttl})

    def _has_queue(self, queue: str, **kwargs: Any) -> bool:
        return bool(self.connection.execute(HAS_QUEUE, {"queue": queue}, fetch=True)[0][0])

    def _queue_bind(self, exchange: str, routing_key: str, pattern: str | None, queue: str) -> None:
        self.connection.unrouted_until.clear()
        self.connection.execute(UPSERT_BINDING, {
            "exchange": exchange, "type": self.typeof(exchange).type, "routing_key": routing_key or "",
            "pattern": pattern or "", "queue": queue,
        })

    def get_table(self, exchange: str) -> list[tuple[str, str, str]]:
        """Bindings of ``exchange`` from the database (all processes' bindings)."""
        rows = self.connection.execute(BINDINGS_OF, {"exchange": exchange}, fetch=True)
        return [(routing_key, pattern or None, queue) for routing_key, pattern, queue in rows]

    def queue_delete(self, queue: str, if_unused: bool = False, if_empty: bool = False, **kwargs: Any) -> None:
        if if_empty and self._size(queue):
            return
        self.connection.execute(DELETE_QUEUE, {"queue": queue})
        self.connection.forget_queue(queue)

    def _delete(self, queue: str, *args: Any, **kwargs: Any) -> None:
        self.queue_delete(queue)

    def _size(self, queue: str) -> int:
        return int(self.connection.execute(SIZE, {"queue": queue}, fetch=True)[0][0])

    def _purge(self, queue: str) -> int:
        return self.connection.execute(PURGE, {"queue": queue})

    # -- publishing -------------------------------------------------------------------------------------------

    def basic_publish(self, message: dict, exchange: str, routing_key: str, **kwargs: Any) -> None:
        self._inplace_augment_message(message, exchange, routing_key)
        if not exchange:
            self._put(routing_key, message)
            return
        transport = self.connection
        key = (exchange, routing_key or "")
        if exchange in transport.event_exchanges and transport.unrouted_until.get(key, 0.0) > monotonic():
            return  # nobody listens to these events right now (re-checked every event_binding_ttl seconds)
        payload = dumps(message)
        params = {"exchange": exchange, "routing_key": routing_key or "", "payload": payload}
        if transport.execute(ROUTE, params):
            return
        if exchange in transport.event_exchanges:
            transport.unrouted_until[key] = monotonic() + transport.event_binding_ttl
            return
        # Nothing bound in the database: re-declare the durable bindings this process declared (e.g. after
        # housekeeping or a database reset) and route again.
        if self._redeclare_bindings(exchange, routing_key):
            self.connection.execute(ROUTE, params)

    def _redeclare_bindings(self, exchange: str, routing_key: str) -> bool:
        try:
            table = self.state.exchanges[exchange]["table"]
        except KeyError:
            return False
        queues = self.typeof(exchange).lookup(table, exchange, routing_key or "", None)
        redeclared = False
        for queue in queues:
            declared = self.connection.declared_queues.get(queue)
            if declared is None or declared["expires"] is not None or declared["auto_delete"]:
                continue
            self.connection.execute(UPSERT_QUEUE, {"queue": queue, "expires": None, "ttl": declared["ttl"]})
            for rkey, pattern, bound in table:
                if bound == queue:
                    self._queue_bind(exchange, rkey, pattern, queue)
            redeclared = True
        return redeclared

    def _put(self, queue: str, message: dict, **kwargs: Any) -> None:
        params = {"queue": queue, "payload": dumps(message)}
        if not self.connection.execute(PUT, params):
            self.connection.execute(UPSERT_QUEUE, {"queue": queue, "expires": None, "ttl": None})
            self.connection.execute(PUT, params)

    def _put_fanout(self, exchange: str, message: dict, routing_key: str, **kwargs: Any) -> None:
        self.connection.execute(ROUTE, {"exchange": exchange, "routing_key": routing_key or "",
                                        "payload": dumps(message)})

    # -- consuming ----------------------------------------------------------------------------------------------

    def _fetch(self, queue: str, no_ack: bool) -> dict | None:
        transport = self.connection
        rows = transport.execute(FETCH_NO_ACK if no_ack else FETCH,
                                 {"queue": queue, "visibility_timeout": transport.visibility_timeout}, fetch=True)
        if not rows:
            return None
        message_id, payload, deliveries = rows[0]
        message = loads(payload)
        properties = message["properties"]
        properties["delivery_tag"] = f"{message_id}.{deliveries}"
        redelivered = deliveries > 1
        properties.setdefault("delivery_info", {})["redelivered"] = redelivered
        message["redelivered"] = redelivered
        if not no_ack:
            transport.hold(properties["delivery_tag"])
        return message

    def _get(self, queue: str, timeout: float | None = None) -> dict:
        transport = self.connection
        if queue not in transport.maybe_ready or _worker_shutting_down():
            raise Empty()
        message = self._fetch(queue, queue in self._no_ack_queues)
        if message is None:
            transport.maybe_ready.discard(queue)
            raise Empty()
        if _worker_shutting_down() and queue not in self._no_ack_queues:
            # The shutdown request arrived while we fetched: hand the message back (visible now, not after the
            # visibility timeout) instead of starting it.
            self._give_back(message["properties"]["delivery_tag"])
            raise Empty()
        return message

    def _give_back(self, delivery_tag: str) -> None:
        parsed = parse_delivery_tag(delivery_tag)
        if parsed is not None:
            self.connection.execute(RESTORE, {"id": parsed[0], "deliveries": parsed[1]})
        self.connection.release(delivery_tag)

    def basic_get(self, queue: str, no_ack: bool = False, **kwargs: Any) -> Any:
        payload = self._fetch(queue, no_ack)
        if payload is None:
            return None
        message = self.Message(payload, channel=self)
        if not no_ack:
            self.qos.append(message, message.delivery_tag)
        return message

    def basic_consume(self, queue: str, no_ack: bool, callback: Any, consumer_tag: str, **kwargs: Any) -> Any:
        if no_ack:
            self._no_ack_queues.add(queue)
        result = super().basic_consume(queue, no_ack, callback, consumer_tag, **kwargs)
        self.connection.start_consuming(queue)
        return result

    def basic_cancel(self, consumer_tag: str) -> Any:
        queue = self._tag_to_queue.get(consumer_tag)
        result = super().basic_cancel(consumer_tag)
        if queue is not None and queue not in self._active_queues and self.connection is not None:
            self.connection.stop_consuming(queue)
            declared = self.connection.declared_queues.get(queue)
            if declared and declared["auto_delete"] and not self.closed and self._pid == os.getpid():
                self.queue_delete(queue)
        return result

    def basic_ack(self, delivery_tag: Any, multiple: bool = False) -> None:
        super().basic_ack(delivery_tag, multiple)
        parsed = parse_delivery_tag(delivery_tag)
        if parsed is not None:
            self.connection.execute(ACK, {"id": parsed[0], "deliveries": parsed[1]})
            self.connection.release(delivery_tag)

    def basic_reject(self, delivery_tag: Any, requeue: bool = False) -> None:
        super().basic_reject(delivery_tag, requeue=requeue)  # requeue → _restore_at_beginning
        if not requeue:
            parsed = parse_delivery_tag(delivery_tag)
            if parsed is not None:
                self.connection.execute(ACK, {"id": parsed[0], "deliveries": parsed[1]})
        self.connection.release(delivery_tag)

    def _restore(self, message: Any) -> None:
        """Make an unacked message visible again, in place (its id, order and delivery count kept)."""
        parsed = parse_delivery_tag(message.delivery_tag)
        if parsed is None or self._pid != os.getpid():
            return
        self.connection.execute(RESTORE, {"id": parsed[0], "deliveries": parsed[1]})
        self.connection.release(message.delivery_tag)

    def _restore_at_beginning(self, message: Any) -> None:
        self._restore(message)

    def close(self) -> None:
        if self._pid != os.getpid():
            # A forked child must not restore (or touch) its parent's deliveries.
            self.closed = True
            if self._qos is not None:
                self._qos._delivered.clear()
                self._qos._delivered.restored = True
                self._qos._on_collect.cancel()
            self.connection = None
            return
        super().close()


class Transport(sqla_transport.Transport):
    """kombu's SQLAlchemy transport on PostgreSQL with persisted bindings, fanout, expiry and acks that mean it."""

    Channel = Channel

    driver_type = "postgresql"
    driver_name = "psycopg"
    polling_interval = 2.0
    visibility_timeout = 300.0
    housekeeping_interval = 30.0
    connection_errors = (SAOperationalError, psycopg.OperationalError, psycopg.InterfaceError)

    implements = virtual.Transport.implements.extend(exchange_type=frozenset(["direct", "topic", "fanout"]))

    def __init__(self, client: Any, **kwargs: Any) -> None:
        super().__init__(client, **kwargs)
        options = client.transport_options
        self.visibility_timeout = float(options.get("visibility_timeout", self.visibility_timeout))
        self.housekeeping_interval = float(options.get("housekeeping_interval", self.housekeeping_interval))
        self.listen = bool(options.get("listen", True))
        # Celery's event exchange: events nobody is bound to are dropped without a round trip, re-checked
        # every event_binding_ttl seconds (events are lossy by design; task and control messages never are).
        self.event_exchanges = frozenset(options.get("event_exchanges", ("celeryev",)))
        self.event_binding_ttl = float(options.get("event_binding_ttl", 1.0))
        self.unrouted_until: dict[tuple[str, str], float] = {}
        self.polling_interval = float(self.polling_interval)
        self.conninfo = libpq_conninfo(client.hostname)
        self.declared_queues: dict[str, dict[str, Any]] = {}
        self.maybe_ready: set[str] = set()
        self._pid = os.getpid()
        self._lock = threading.RLock()
        self._db: psycopg.Connection | None = None
        self._listener: psycopg.Connection | None = None
        self._wake_r: int | None = None
        self._wake_w: int | None = None
        self._consumed: dict[str, int] = {}
        self._held: set[str] = set()
        self._next_full_poll = 0.0
        self._keeper: threading.Thread | None = None
        self._stopping = threading.Event()

    # -- database access ---------------------------------------------------------------------------------------

    def _connection(self) -> psycopg.Connection:
        if self._db is None or self._db.closed:
            self._db = psycopg.connect(self.conninfo, autocommit=True, application_name="litpg-broker")
        return self._db

    def execute(self, sql: str, params: dict[str, Any] | None = None, fetch: bool = False) -> Any:
        """Run one statement (autocommit); the fetched rows if ``fetch``, else the row count."""
        with self._lock:
            try:
                cursor = self._connection().execute(sql, params)
                return cursor.fetchall() if fetch else cursor.rowcount
            except (psycopg.OperationalError, psycopg.InterfaceError):
                self._discard(self._db)
                self._db = None
                raise

    def _discard(self, conn: psycopg.Connection | None) -> None:
        if conn is None:
            return
        if self._pid == os.getpid():
            try:
                conn.close()
            except Exception:  # noqa: BLE001 - closing a broken connection may fail; nothing to do
                pass

    def establish_connection(self) -> Any:
        self.execute("SELECT 1")  # connection errors surface here, where kombu retries them
        return super().establish_connection()

    def close_connection(self, connection: Any) -> None:
        """Close channels (restoring unacked deliveries), stop the keeper, close our sockets; reusable after."""
        self._stopping.set()
        self._keeper = None
        try:
            super().close_connection(connection)
        finally:
            with self._lock:
                self._discard(self._db)
                self._db = None
                self._held.clear()
            self._discard(self._listener)
            self._listener = None
            self._consumed.clear()
            self.maybe_ready.clear()
            wake_r, wake_w, self._wake_r, self._wake_w = self._wake_r, self._wake_w, None, None
            if self._pid == os.getpid():
                for fd in (wake_r, wake_w):
                    if fd is not None:
                        try:
                            os.close(fd)
                        except OSError:
                            pass

    # -- deliveries held by this process -------------------------------------------------------------------------

    def hold(self, delivery_tag: str) -> None:
        with self._lock:
            self._held.add(delivery_tag)

    def release(self, delivery_tag: Any) -> None:
        with self._lock:
            self._held.discard(str(delivery_tag))
        self.wake()

    def wake(self) -> None:
        """Interrupt a wait in ``drain_events`` (an ack freed a prefetch slot)."""
        wake_w = self._wake_w
        if wake_w is None:
            return
        try:
            os.write(wake_w, b"x")
        except OSError:
            pass

    def forget_queue(self, queue: str) -> None:
        self.declared_queues.pop(queue, None)
        self.maybe_ready.discard(queue)
        self.state.queue_bindings_delete(queue)
        for exchange in self.state.exchanges.values():
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
        if self._keeper is None and self._pid == os.getpid():
            self._stopping = threading.Event()
            self._keeper = threading.Thread(target=self._keep, args=(self._stopping,), name="litpg-keeper",
                                            daemon=True)
            self._keeper.start()
        self.wake()

    def stop_consuming(self, queue: str) -> None:
        count = self._consumed.get(queue, 0) - 1
        if count <= 0:
            self._consumed.pop(queue, None)
        else:
            self._consumed[queue] = count

    # -- the event loop ------------------------------------------------------------------------------------------

    def drain_events(self, connection: Any, timeout: float | None = None) -> None:
        start = monotonic()
        while True:
            if _worker_shutting_down():
                raise TimeoutError()  # a stopping worker starts nothing new; queued messages stay visible
            self._ensure_listener()
            self._read_notifications()
            now = monotonic()
            if now >= self._next_full_poll or not self.listen:
                self.maybe_ready.update(self._consumed)
                self._next_full_poll = now + self.polling_interval
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
            self._wait(wait)

    def _ensure_listener(self) -> None:
        if not self.listen or not self._consumed or self._listener is not None:
            return
        listener = psycopg.connect(self.conninfo, autocommit=True, application_name="litpg-listen")
        listener.execute(f"LISTEN {NOTIFY_CHANNEL}")
        self._listener = listener
        self.maybe_ready.update(self._consumed)  # anything sent before we listened

    def _read_notifications(self) -> None:
        listener = self._listener
        if listener is None:
            return
        pgconn = listener.pgconn
        try:
            pgconn.consume_input()
            while (notify := pgconn.notifies()) is not None:
                queue = notify.extra.decode()
                if queue in self._consumed:
                    self.maybe_ready.add(queue)
        except psycopg.Error as exc:
            logger.warning("broker LISTEN connection lost (%s); reconnecting", type(exc).__name__)
            self._discard(listener)
            self._listener = None
            self.maybe_ready.update(self._consumed)

    def _wait(self, timeout: float) -> None:
        wake_r = self._wake_r
        fds = [fd for fd in (wake_r, self._listener.pgconn.socket if self._listener is not None else None)
               if fd is not None]
        if not fds:
            time.sleep(timeout)
            return
        try:
            readable, _, _ = select.select(fds, [], [], timeout)
        except (OSError, ValueError):
            time.sleep(min(timeout, 0.1))
            return
        if wake_r is not None and wake_r in readable:
            try:
                os.read(wake_r, 4096)
            except OSError:
                pass
        if self._listener is not None and any(fd != wake_r for fd in readable):
            self._read_notifications()

    # -- the keeper thread: deadlines, queue liveness, housekeeping ----------------------------------------------

    def _keep(self, stopping: threading.Event) -> None:
        next_touch = next_renew = next_housekeeping = 0.0
        while not stopping.is_set() and self._pid == os.getpid():
            now = monotonic()
            try:
                if now >= next_renew:
                    self.renew_deadlines()
                    next_renew = now + max(0.2, self.visibility_timeout / 4)
                if now >= next_touch:
                    next_touch = now + self.touch_queues()
                if now >= next_housekeeping:
                    self.housekeeping()
                    next_housekeeping = now + max(0.2, min(self.housekeeping_interval, self.visibility_timeout / 2))
            except Exception as exc:  # noqa: BLE001 - the keeper must outlive database hiccups
                logger.warning("broker keeper: %s: %s", type(exc).__name__, exc)
            stopping.wait(max(0.05, min(next_renew, next_touch, next_housekeeping) - monotonic()))

    def renew_deadlines(self) -> int:
        """Push the deadline of every delivery this process holds; returns how many were renewed."""
        with self._lock:
            held = [parsed for tag in self._held if (parsed := parse_delivery_tag(tag)) is not None]
        if not held:
            return 0
        return self.execute(RENEW, {"ids": [m for m, _ in held], "deliveries": [d for _, d in held],
                                    "visibility_timeout": self.visibility_timeout})

    def touch_queues(self) -> float:
        """Mark the queues this process consumes as used; re-declare any that expired meanwhile.

        Returns the seconds until the next touch (a third of the shortest expiry, at most 10 s).
        """
        queues = list(self._consumed)
        expiring = [self.declared_queues.get(q, {}).get("expires") for q in queues]
        expiring = [e for e in expiring if e]
        if not queues:
            return 1.0
        present = {row[0] for row in self.execute(TOUCH, {"queues": queues}, fetch=True)}
        for queue in queues:
            if queue not in present and queue in self.declared_queues:
                self._redeclare_queue(queue)
        return min([10.0] + [max(0.2, e / 3000) for e in expiring])

    def _redeclare_queue(self, queue: str) -> None:
        declared = self.declared_queues[queue]
        logger.warning("broker queue %s had expired while consumed; declaring it again", queue)
        self.execute(UPSERT_QUEUE, {"queue": queue, "expires": declared["expires"], "ttl": declared["ttl"]})
        for exchange, routing_key, _arguments in self.state.queue_bindings(queue):
            exchange_type = self.state.exchanges.get(exchange, {}).get("type", "direct")
            pattern = None
            if exchange_type == "topic":
                pattern = self.Channel.exchange_types["topic"](None).key_to_pattern(routing_key)
            self.execute(UPSERT_BINDING, {"exchange": exchange, "type": exchange_type,
                                          "routing_key": routing_key or "", "pattern": pattern or "",
                                          "queue": queue})

    def housekeeping(self) -> dict[str, int]:
        """Reclaim overdue deliveries, drop expired queues and messages (one process at a time)."""
        counts: dict[str, int] = {}
        with self._lock:
            conn = self._connection()
            try:
                with conn.transaction():
                    locked = conn.execute("SELECT pg_try_advisory_xact_lock(%s)",
                                          (BROKER_HOUSEKEEPING_LOCK,)).fetchone()[0]
                    if not locked:
                        return counts
                    for name, sql in broker_housekeeping_sql():
                        counts[name] = int(conn.execute(sql).fetchone()[0])
            except (psycopg.OperationalError, psycopg.InterfaceError):
                self._discard(self._db)
                self._db = None
                raise
        if any(counts.values()):
            logger.info("broker housekeeping: %s", counts)
        return counts
