"""Batch leases: claim a batch with one conditional UPDATE, keep the lease alive, release or fail it.

The database clock decides every lease (``now()``), so hosts may disagree about the time. A lease owner names
one delivery: ``host:pid:random``. Every statement here waits out a database outage (``ctx.waiting``).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, or_, select, update

from app.models import ScreeningBatch, ScreeningTask
from app.models.statuses import (
    ACTIVE_BATCH_STATUSES,
    FINAL_TASK_STATUSES,
    TERMINAL_BATCH_STATUSES,
    BatchStatus,
    TaskStatus,
)
from app.services import metric_counters
from app.services.engine.budget import release_previous_reservation
from app.services.engine.context import EngineContext

logger = logging.getLogger(__name__)

BATCHES = ScreeningBatch.__table__
TASKS = ScreeningTask.__table__


def lease_deadline(ttl: float) -> Any:
    """SQL expression: the database's now() plus ``ttl`` seconds."""
    return func.now() + func.make_interval(0, 0, 0, 0, 0, 0, float(ttl))


def lease_is_free() -> Any:
    """SQL condition: nobody holds the batch's lease, or the holder's lease has expired."""
    return or_(BATCHES.c.lease_owner.is_(None), BATCHES.c.lease_expires_at.is_(None),
               BATCHES.c.lease_expires_at < func.now())


def new_lease_owner() -> str:
    """A lease owner name unique to one delivery: host, process id and a random suffix."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:10]}"


def owner_is_dead_local_process(owner: str | None) -> bool:
    """Whether ``owner`` names a process on this host that no longer exists (e.g. a crashed pool child)."""
    if not owner:
        return False
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


@dataclass
class ClaimedBatch:
    """A batch this delivery holds the lease of."""

    batch_id: int
    task_id: int
    batch_index: int
    owner: str
    cursor: int
    item_ids: list[int]


@dataclass
class BatchOutcome:
    """What a delivery of ``screen_batch`` did: screened, found the batch finished, or found it busy."""

    status: str                 # a BatchStatus, or: busy | lease_lost | missing
    task_id: int
    batch_index: int
    screened: int = 0
    checkpoint_ms: list[float] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """JSON-able summary (the Celery result of the batch)."""
        return {"status": str(self.status), "task_id": self.task_id, "batch_index": self.batch_index,
                "screened": self.screened, "checkpoint_ms": [round(v, 3) for v in self.checkpoint_ms]}


def claim_batch(ctx: EngineContext, task_id: int, batch_index: int, owner: str) -> ClaimedBatch | BatchOutcome:
    """Take the batch's lease with one conditional UPDATE; else say why not (finished, cancelled or busy)."""
    return ctx.waiting(f"claim of batch {task_id}/{batch_index}",
                       lambda: _claim(ctx, task_id, batch_index, owner))


def _claim(ctx: EngineContext, task_id: int, batch_index: int, owner: str) -> ClaimedBatch | BatchOutcome:
    claimable = _cancel_if_task_stopped(ctx, task_id, batch_index)
    if claimable is None:
        return BatchOutcome("missing", task_id, batch_index)
    if claimable == "paused":  # a budget pause: the batch waits (pending) for the resume to re-send it
        return BatchOutcome("paused", task_id, batch_index)
    if claimable:
        claimed = _try_claim(ctx, task_id, batch_index, owner, lease_is_free())
        if claimed is not None:
            return claimed
    with ctx.engine.connect() as conn:
        current = conn.execute(
            select(BATCHES.c.status, BATCHES.c.lease_owner)
            .where(BATCHES.c.task_id == task_id, BATCHES.c.batch_index == batch_index)
        ).first()
    if current is None:
        return BatchOutcome("missing", task_id, batch_index)
    if current.status in TERMINAL_BATCH_STATUSES:
        return BatchOutcome(current.status, task_id, batch_index)
    if claimable and owner_is_dead_local_process(current.lease_owner):
        logger.warning("batch %s/%s: lease holder %s is dead; taking over", task_id, batch_index,
                       current.lease_owner)
        claimed = _try_claim(ctx, task_id, batch_index, owner, BATCHES.c.lease_owner == current.lease_owner)
        if claimed is not None:
            return claimed
    return BatchOutcome("busy", task_id, batch_index)


def _cancel_if_task_stopped(ctx: EngineContext, task_id: int, batch_index: int) -> bool | str | None:
    """Whether the batch may run (None: no such task; "paused": the task is paused). A cancelled or final task's
    free batch is cancelled."""
    with ctx.engine.begin() as conn:
        task = conn.execute(select(TASKS.c.status, TASKS.c.cancel_requested).where(TASKS.c.id == task_id)).first()
        if task is None:
            return None
        if task.status == TaskStatus.PAUSED and not task.cancel_requested:
            return "paused"
        if not (task.cancel_requested or task.status in FINAL_TASK_STATUSES):
            return True
        conn.execute(
            update(BATCHES)
            .where(BATCHES.c.task_id == task_id, BATCHES.c.batch_index == batch_index,
                   BATCHES.c.status.in_(ACTIVE_BATCH_STATUSES), lease_is_free())
            .values(status=BatchStatus.CANCELLED, lease_owner=None, lease_expires_at=None,
                    completed_at=func.now(), error="cancelled before it ran")
        )
        return False


def _try_claim(ctx: EngineContext, task_id: int, batch_index: int, owner: str,
               condition: Any) -> ClaimedBatch | None:
    with ctx.engine.begin() as conn:
        row = conn.execute(
            update(BATCHES)
            .where(BATCHES.c.task_id == task_id, BATCHES.c.batch_index == batch_index,
                   BATCHES.c.status.in_(ACTIVE_BATCH_STATUSES), condition)
            .values(status=BatchStatus.RUNNING, lease_owner=owner,
                    lease_expires_at=lease_deadline(ctx.settings.lease_ttl),
                    attempts=BATCHES.c.attempts + 1, claimed_at=func.now(),
                    started_at=func.coalesce(BATCHES.c.started_at, func.now()), error=None)
            .returning(BATCHES.c.id, BATCHES.c.cursor, BATCHES.c.item_ids, BATCHES.c.attempts)
        ).first()
        if row is None:
            return None
        release_previous_reservation(conn, task_id, row.id)
        conn.execute(
            update(TASKS).where(TASKS.c.id == task_id, TASKS.c.status == TaskStatus.PENDING)
            .values(status=TaskStatus.RUNNING, started_at=func.coalesce(TASKS.c.started_at, func.now()),
                    updated_at=func.now())
        )
        if row.attempts > 1:  # a delivery beyond the first: the monotonic /metrics counter of recoveries
            metric_counters.add(conn, metric_counters.BATCH_RECOVERIES)
    return ClaimedBatch(row.id, task_id, batch_index, owner, row.cursor, list(row.item_ids))


class LeaseHeartbeat:
    """A thread renewing the lease every TTL/3 while slow LLM calls run; sets ``lost`` if the lease is gone.

    A renewal that fails because the database is unreachable is tried again every 0.25 s (the lease lasts three
    beats); only a renewal the database answers with "not yours" sets ``lost``.
    """

    def __init__(self, ctx: EngineContext, batch_id: int, owner: str) -> None:
        self.ctx = ctx
        self.batch_id = batch_id
        self.owner = owner
        self.ttl = ctx.settings.lease_ttl
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"lease-{batch_id}", daemon=True)

    def __enter__(self) -> LeaseHeartbeat:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _renew(self) -> bool:
        with self.ctx.engine.begin() as conn:
            renewed = conn.execute(
                update(BATCHES)
                .where(BATCHES.c.id == self.batch_id, BATCHES.c.lease_owner == self.owner,
                       BATCHES.c.status == BatchStatus.RUNNING)
                .values(lease_expires_at=lease_deadline(self.ttl))
                .returning(BATCHES.c.id)
            ).first()
        return renewed is not None

    def _run(self) -> None:
        from app.services.engine.waits import is_disconnect

        interval = max(0.2, self.ttl / 3)
        pause = interval
        while not self._stop.wait(pause):
            try:
                renewed = self._renew()
            except Exception as exc:  # noqa: BLE001 - a disconnect is retried soon; log anything else
                # try again within a fraction of the beat: the server may be back any moment, and the lease
                # must be renewed before the sweeper sees it expire
                first = pause == interval  # one line per outage, not four a second
                pause = min(interval, 0.25)
                level = logging.WARNING if is_disconnect(exc) else logging.ERROR
                if first or level == logging.ERROR:
                    logger.log(level, "batch %s: lease renewal failed (%s); retrying", self.batch_id,
                               type(exc).__name__)
                continue
            pause = interval
            if not renewed:
                logger.warning("batch %s: lease lost by %s", self.batch_id, self.owner)
                self.lost.set()
                return


def _free_batch(ctx: EngineContext, task_id: int, batch_index: int, what: str, **values: Any) -> None:
    """Drop the lease of an unfinished batch and set ``values`` on it (waiting out a database outage)."""
    def free() -> None:
        with ctx.engine.begin() as conn:
            conn.execute(
                update(BATCHES)
                .where(BATCHES.c.task_id == task_id, BATCHES.c.batch_index == batch_index,
                       BATCHES.c.status.in_(ACTIVE_BATCH_STATUSES))
                .values(lease_owner=None, lease_expires_at=None, **values)
            )
    ctx.waiting(f"{what} of batch {task_id}/{batch_index}", free)


def release_batch(ctx: EngineContext, task_id: int, batch_index: int, due_in: float, error: str) -> None:
    """Before a Celery retry: free the lease so the retry can claim, and note when the retry is due."""
    _free_batch(ctx, task_id, batch_index, "release", status=BatchStatus.PENDING, error=error[:2000],
                dispatched_at=func.now() + func.make_interval(0, 0, 0, 0, 0, 0, float(due_in)))


def fail_batch(ctx: EngineContext, task_id: int, batch_index: int, error: str) -> None:
    """Mark the batch failed (it exhausted its retries or hit a permanent error); its results stand."""
    _free_batch(ctx, task_id, batch_index, "failing", status=BatchStatus.FAILED, completed_at=func.now(),
                error=error[:2000])
    logger.warning("batch %s/%s failed: %s", task_id, batch_index, error)
