"""The keeper: one background thread per consuming process for the broker's slow, periodic work.

For every consuming transport of the process it renews the visibility deadlines of the deliveries the transport
holds (so a live worker's unacked messages are never delivered twice, even while its event loop is busy) and
marks the queues it consumes as used (queue expiry); once per process it runs housekeeping
(``housekeeping.py``). A dead process stops renewing, so its messages become visible again once their deadline
passes. Database errors are logged and retried on the next round: the keeper outlives a restarting server.
"""

from __future__ import annotations

import logging
import os
import threading
import weakref
from time import monotonic
from typing import TYPE_CHECKING

from tasks.broker import housekeeping, sql

if TYPE_CHECKING:
    from tasks.broker.transport import Transport

logger = logging.getLogger(__name__)


def renew_deadlines(transport: Transport) -> int:
    """Push the deadline of every delivery ``transport`` holds; returns how many were renewed."""
    held = transport.held_deliveries()
    if not held:
        return 0
    return transport.execute(sql.RENEW, {"ids": [m for m, _ in held], "deliveries": [d for _, d in held],
                                         "visibility_timeout": transport.visibility_timeout}, retry=True)


def touch_queues(transport: Transport) -> float:
    """Mark the queues ``transport`` consumes as used; re-declare any that expired meanwhile.

    Returns the seconds until the next touch (a third of the shortest expiry, at most 10 s).
    """
    queues = transport.consumed_queues()
    if not queues:
        return 1.0
    expiring = [e for q in queues if (e := transport.declared_queues.get(q, {}).get("expires"))]
    present = {row[0] for row in transport.execute(sql.TOUCH, {"queues": queues}, fetch=True, retry=True)}
    for queue in queues:
        if queue not in present and queue in transport.declared_queues:
            redeclare_queue(transport, queue)
    return min([10.0] + [max(0.2, e / 3000) for e in expiring])


def redeclare_queue(transport: Transport, queue: str) -> None:
    """Declare ``queue`` and its bindings again (it expired while this process still consumed it)."""
    declared = transport.declared_queues[queue]
    logger.warning("broker queue %s had expired while consumed; declaring it again", queue)
    transport.execute(sql.UPSERT_QUEUE, {"queue": queue, "expires": declared["expires"], "ttl": declared["ttl"]})
    for exchange, routing_key, _arguments in transport.state.queue_bindings(queue):
        exchange_type = transport.state.exchanges.get(exchange, {}).get("type", "direct")  # type: ignore[union-attr]  # kombu types it Optional; always a dict here
        pattern = None
        if exchange_type == "topic":
            pattern = transport.Channel.exchange_types["topic"](None).key_to_pattern(routing_key)  # type: ignore[attr-defined]  # TopicExchange
        transport.execute(sql.UPSERT_BINDING, {"exchange": exchange, "type": exchange_type,
                                               "routing_key": routing_key or "", "pattern": pattern or "",
                                               "queue": queue})


class Keeper:
    """The process's keeper thread; it runs while at least one transport is registered."""

    def __init__(self) -> None:
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._transports: weakref.WeakSet[Transport] = weakref.WeakSet()
        self._due: weakref.WeakKeyDictionary[Transport, dict[str, float]] = weakref.WeakKeyDictionary()
        self._thread: threading.Thread | None = None
        self._changed = threading.Event()

    def register(self, transport: Transport) -> None:
        with self._lock:
            self._transports.add(transport)
            self._due.setdefault(transport, {"renew": 0.0, "touch": 0.0})
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="litpg-keeper", daemon=True)
                self._thread.start()
        self._changed.set()

    def unregister(self, transport: Transport) -> None:
        with self._lock:
            self._transports.discard(transport)
            self._due.pop(transport, None)
        self._changed.set()

    def _run(self) -> None:
        next_housekeeping = 0.0
        while os.getpid() == self._pid:
            with self._lock:
                transports = list(self._transports)
                if not transports:
                    self._thread = None
                    return
            now = monotonic()
            wake_at = now + 10.0
            for transport in transports:
                due = self._due.get(transport)
                if due is None:
                    continue
                try:
                    if now >= due["renew"]:
                        renew_deadlines(transport)
                        due["renew"] = now + max(0.2, transport.visibility_timeout / 4)
                    if now >= due["touch"]:
                        due["touch"] = now + touch_queues(transport)
                except Exception as exc:  # noqa: BLE001 - the keeper must outlive database hiccups
                    logger.warning("broker keeper: %s: %s", type(exc).__name__, exc)
                    due["renew"] = due["touch"] = now + 1.0
                wake_at = min(wake_at, due["renew"], due["touch"])
            if now >= next_housekeeping:
                transport = transports[0]
                next_housekeeping = now + max(0.2, min(transport.housekeeping_interval,
                                                       transport.visibility_timeout / 2))
                try:
                    with transport.shared.locked() as conn:
                        housekeeping.run(conn)
                except Exception as exc:  # noqa: BLE001 - as above
                    logger.warning("broker housekeeping: %s: %s", type(exc).__name__, exc)
                    next_housekeeping = now + 1.0
            wake_at = min(wake_at, next_housekeeping)
            del transports, transport
            self._changed.wait(max(0.05, wake_at - monotonic()))
            self._changed.clear()


_keepers: dict[int, Keeper] = {}
_keepers_lock = threading.Lock()


def process_keeper() -> Keeper:
    """This process's keeper (a forked child gets its own)."""
    with _keepers_lock:
        keeper = _keepers.get(os.getpid())
        if keeper is None:
            _keepers.clear()
            keeper = _keepers[os.getpid()] = Keeper()
        return keeper
