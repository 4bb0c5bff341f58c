"""Sending Celery tasks by name, after commit: the engine's only link to the broker.

``Publisher.publish(session, message)`` never sends inside an open transaction: it queues the send on the
session and sends it once the transaction has committed (a rollback drops it) — the way Warehouse's
``WarehouseTask.apply_async`` defers to the transaction manager. Outside a transaction it sends at once. So a
message can never name rows that are not committed. A failed send is logged, not raised: the rows are committed
and the sweeper sends what never arrived.

The send waits for the end of the transaction (``after_transaction_end``), not just its commit: by then the
session has given its connection back to the pool, so a process whose broker borrows pooled connections
(``tasks/broker/connection.py``) never needs a second one while it still holds the first.

``CeleryPublisher`` also answers the bookkeeping questions the sweeper asks Celery (was a task id revoked, settle
a chord header whose message the sweeper replaced, how long is the queue).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy import event
from sqlalchemy.orm import Session, SessionTransaction

logger = logging.getLogger(__name__)

_PENDING = "litscreen_after_commit"
_COMMITTED = "litscreen_committed"


@dataclass(frozen=True)
class TaskMessage:
    """A Celery task to send: its registered name, arguments and (optionally) its task id."""

    name: str
    args: tuple[Any, ...] = ()
    task_id: str | None = None
    options: dict[str, Any] = field(default_factory=dict)


def _run(callbacks: list[Callable[[], None]]) -> None:
    for callback in callbacks:
        try:
            callback()
        except Exception:  # noqa: BLE001 - the transaction is committed; the sweeper repairs a lost send
            logger.exception("sending after commit failed; the sweeper will re-send what is missing")


def _mark_committed(session: Session) -> None:
    if session.info.get(_PENDING):
        session.info[_COMMITTED] = True


def _drop_pending(session: Session) -> None:
    session.info.pop(_COMMITTED, None)
    dropped = session.info.pop(_PENDING, [])
    if dropped:
        logger.info("transaction rolled back: %d queued message(s) dropped", len(dropped))


def _on_transaction_end(session: Session, transaction: SessionTransaction) -> None:
    """The outermost transaction ended and its connection is back in the pool: send what it committed."""
    if transaction.parent is not None:  # a savepoint or subtransaction: the outer one decides
        return
    if session.info.pop(_COMMITTED, False):
        _run(session.info.pop(_PENDING, []))
    else:  # ended without a commit: nothing it queued may be sent
        _drop_pending(session)


def after_commit(session: Session, callback: Callable[[], None]) -> None:
    """Run ``callback`` once the session's current transaction has committed and ended (at once when none is
    open); a rollback drops it."""
    if not session.in_transaction():
        _run([callback])
        return
    if not event.contains(session, "after_transaction_end", _on_transaction_end):
        event.listen(session, "after_commit", _mark_committed)
        event.listen(session, "after_rollback", _drop_pending)
        event.listen(session, "after_transaction_end", _on_transaction_end)
    session.info.setdefault(_PENDING, []).append(callback)


class Publisher(Protocol):
    """What the engine needs from the task queue."""

    def publish(self, session: Session, message: TaskMessage) -> None:
        """Send ``message`` after ``session`` commits."""

    def publish_chord(self, session: Session, header: list[TaskMessage], body: TaskMessage,
                      interval: float) -> None:
        """Send ``group(header) | body`` after ``session`` commits (``body.task_id`` is the chord's id)."""

    def revoked(self, task_ids: list[str]) -> set[str]:
        """The ids among ``task_ids`` that Celery revoked or terminated."""

    def settle(self, task_id: str, result: dict[str, Any]) -> None:
        """Store ``result`` for ``task_id`` unless it has a final state (so a chord waiting on it completes)."""

    def queue_size(self) -> int | None:
        """Messages waiting in the default queue (None when the broker cannot say)."""


class CeleryPublisher:
    """``Publisher`` on a Celery app (sending by task name only: ``app/`` never imports ``tasks/``)."""

    def __init__(self, celery: Any) -> None:
        self.celery = celery

    def _signature(self, message: TaskMessage, **extra: Any) -> Any:
        return self.celery.signature(message.name, args=message.args, task_id=message.task_id,
                                     **message.options, **extra)

    def publish(self, session: Session, message: TaskMessage) -> None:
        """Send ``message`` after commit."""
        after_commit(session, lambda: self._signature(message).apply_async())

    def publish_chord(self, session: Session, header: list[TaskMessage], body: TaskMessage,
                      interval: float) -> None:
        """Send the chord after commit; its header ids and its body id are the ones given."""
        from celery import chord

        def send() -> None:
            signatures = [self._signature(message) for message in header]
            chord(signatures, self._signature(body, immutable=True)).apply_async(interval=interval,
                                                                                  task_id=body.task_id)

        after_commit(session, send)

    def revoked(self, task_ids: list[str]) -> set[str]:
        """Ids whose stored state is REVOKED (set by a worker that discarded or terminated them)."""
        from celery import states

        found: set[str] = set()
        for task_id in task_ids:
            try:
                if self.celery.backend.get_state(task_id) == states.REVOKED:
                    found.add(task_id)
            except Exception:  # noqa: BLE001 - unknown state: treated as not revoked (the next sweep asks again)
                logger.info("state of %s unknown", task_id, exc_info=True)
        return found

    def settle(self, task_id: str, result: dict[str, Any]) -> None:
        """Mark ``task_id`` done with ``result`` unless it is in a final state already."""
        from celery import states

        if self.celery.backend.get_state(task_id) not in states.READY_STATES:
            self.celery.backend.mark_as_done(task_id, result)

    def queue_size(self) -> int | None:
        """Messages waiting in the default queue."""
        queue = self.celery.conf.task_default_queue or "celery"
        try:
            with self.celery.connection_for_read() as connection:
                return int(connection.default_channel.queue_declare(queue=queue, passive=True).message_count)
        except Exception as exc:  # noqa: BLE001 - an unknown size only delays the rescue of a lost message
            logger.info("broker queue size unknown (%s)", type(exc).__name__)
            return None
