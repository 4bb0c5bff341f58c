"""The broker's channel: every kombu channel operation as one SQL statement on the transport's connection.

Delivery tags are ``"<message id>.<delivery number>"``, so an ack, renewal or requeue touches exactly the
delivery it belongs to. Messages of ``no_ack`` consumers (events, remote control) are deleted as they are read.
"""

from __future__ import annotations

import logging
import os
from json import dumps, loads
from queue import Empty
from time import monotonic
from typing import TYPE_CHECKING, Any

from kombu.transport import sqlalchemy as sqla_transport
from kombu.transport.base import to_rabbitmq_queue_arguments

from tasks.broker import sql
from tasks.broker.connection import CONNECTION_ERRORS, worker_shutting_down

if TYPE_CHECKING:
    from tasks.broker.transport import Transport

logger = logging.getLogger(__name__)


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
        self.connection.execute(sql.UPSERT_QUEUE, {"queue": queue, "expires": expires, "ttl": ttl})

    def _has_queue(self, queue: str, **kwargs: Any) -> bool:
        return bool(self.connection.execute(sql.HAS_QUEUE, {"queue": queue}, fetch=True)[0][0])

    def _queue_bind(self, exchange: str, routing_key: str, pattern: str | None, queue: str) -> None:
        self.connection.unrouted_until.clear()
        self.connection.execute(sql.UPSERT_BINDING, {
            "exchange": exchange, "type": self.typeof(exchange).type, "routing_key": routing_key or "",
            "pattern": pattern or "", "queue": queue,
        })

    def get_table(self, exchange: str) -> list[tuple[str, str, str]]:
        """Bindings of ``exchange`` from the database (all processes' bindings)."""
        rows = self.connection.execute(sql.BINDINGS_OF, {"exchange": exchange}, fetch=True)
        return [(routing_key, pattern or None, queue) for routing_key, pattern, queue in rows]  # type: ignore[misc]  # kombu: pattern may be None

    def queue_delete(self, queue: str, if_unused: bool = False, if_empty: bool = False, **kwargs: Any) -> None:
        if if_empty and self._size(queue):
            return
        self.connection.execute(sql.DELETE_QUEUE, {"queue": queue})
        self.connection.forget_queue(queue)

    def _delete(self, queue: str, *args: Any, **kwargs: Any) -> None:
        self.queue_delete(queue)

    def _size(self, queue: str) -> int:
        return int(self.connection.execute(sql.SIZE, {"queue": queue}, fetch=True)[0][0])

    def _purge(self, queue: str) -> int:
        return self.connection.execute(sql.PURGE, {"queue": queue})

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
        if transport.execute(sql.ROUTE, params):
            return
        if exchange in transport.event_exchanges:
            transport.unrouted_until[key] = monotonic() + transport.event_binding_ttl
            return
        # Nothing bound in the database: re-declare the durable bindings this process declared (e.g. after
        # housekeeping or a database reset) and route again.
        if self._redeclare_bindings(exchange, routing_key):
            self.connection.execute(sql.ROUTE, params)

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
            self.connection.execute(sql.UPSERT_QUEUE, {"queue": queue, "expires": None, "ttl": declared["ttl"]})
            for rkey, pattern, bound in table:
                if bound == queue:
                    self._queue_bind(exchange, rkey, pattern, queue)
            redeclared = True
        return redeclared

    def _put(self, queue: str, message: dict, **kwargs: Any) -> None:  # type: ignore[override]  # kombu names it payload
        params = {"queue": queue, "payload": dumps(message)}
        if not self.connection.execute(sql.PUT, params):
            self.connection.execute(sql.UPSERT_QUEUE, {"queue": queue, "expires": None, "ttl": None})
            self.connection.execute(sql.PUT, params)

    def _put_fanout(self, exchange: str, message: dict, routing_key: str, **kwargs: Any) -> None:
        self.connection.execute(sql.ROUTE, {"exchange": exchange, "routing_key": routing_key or "",
                                        "payload": dumps(message)})

    # -- consuming ----------------------------------------------------------------------------------------------

    def _fetch(self, queue: str, no_ack: bool) -> dict | None:
        transport = self.connection
        rows = transport.execute(sql.FETCH_NO_ACK if no_ack else sql.FETCH,
                                 {"queue": queue, "visibility_timeout": transport.visibility_timeout},
                                 fetch=True, retry=True)
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
        if queue not in transport.maybe_ready or worker_shutting_down():
            raise Empty()
        message = self._fetch(queue, queue in self._no_ack_queues)
        if message is None:
            transport.maybe_ready.discard(queue)
            raise Empty()
        if worker_shutting_down() and queue not in self._no_ack_queues:
            # The shutdown request arrived while we fetched: hand the message back (visible now, not after the
            # visibility timeout) instead of starting it.
            self._give_back(message["properties"]["delivery_tag"])
            raise Empty()
        return message

    def _give_back(self, delivery_tag: str) -> None:
        """Make one delivery visible again now; if the database is unreachable its deadline does it later."""
        parsed = parse_delivery_tag(delivery_tag)
        try:
            if parsed is not None:
                self.connection.execute(sql.RESTORE, {"id": parsed[0], "deliveries": parsed[1]}, retry=True)
        except CONNECTION_ERRORS as exc:
            logger.warning("could not hand back delivery %s now (%s); it is redelivered after its visibility "
                           "timeout", delivery_tag, type(exc).__name__)
        finally:
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
            try:
                self.connection.execute(sql.ACK, {"id": parsed[0], "deliveries": parsed[1]}, retry=True)
            finally:  # not acked: no longer renewed either, so it is delivered again after its deadline
                self.connection.release(delivery_tag)

    def basic_qos(self, *args: Any, **kwargs: Any) -> Any:
        result = super().basic_qos(*args, **kwargs)
        if self.connection is not None:
            self.connection.wake()  # the prefetch limit may have grown: fetch again now
        return result

    def basic_reject(self, delivery_tag: Any, requeue: bool = False) -> None:
        super().basic_reject(delivery_tag, requeue=requeue)  # requeue → _restore_at_beginning
        if not requeue:
            parsed = parse_delivery_tag(delivery_tag)
            if parsed is not None:
                self.connection.execute(sql.ACK, {"id": parsed[0], "deliveries": parsed[1]}, retry=True)
        self.connection.release(delivery_tag)

    def _restore(self, message: Any) -> None:
        """Make an unacked message visible again, in place (its id, order and delivery count kept)."""
        parsed = parse_delivery_tag(message.delivery_tag)
        if parsed is None or self._pid != os.getpid():
            return
        self._give_back(message.delivery_tag)

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
            self.connection = None  # type: ignore[assignment]  # a child never uses it
            return
        super().close()
