"""Recovery: finalize a task from its rows, and the sweeper — the safety net beat runs every few seconds.

Database rows are the truth, messages are hints. The sweeper re-sends a batch whose lease expired (its worker
died) or whose message was evidently lost, under the SAME Celery id so the chord still completes — unless that
id was revoked or terminated (every worker would discard it again): then under a NEW id, recorded in the batch
row, and the task is finalized by the sweeper as when the chord's own bookkeeping is lost.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy import Connection, CursorResult, and_, exists, func, or_, select, update
from sqlalchemy.orm import Session, aliased

from app import task_names
from app.models import ScreeningBatch, ScreeningResult
from app.models.statuses import (
    ACTIVE_BATCH_STATUSES,
    FINAL_TASK_STATUSES,
    TERMINAL_BATCH_STATUSES,
    BatchStatus,
    ResultStatus,
    TaskStatus,
)
from app.services.engine.context import EngineContext
from app.services.engine.leases import BATCHES, TASKS, lease_is_free
from app.services.engine.publisher import TaskMessage

logger = logging.getLogger(__name__)

RESULTS = ScreeningResult.__table__


def recompute_counters(conn: Connection | Session, task_id: int) -> dict[str, Any]:
    """The task's counters and token / cost totals, from its result rows."""
    row = conn.execute(
        select(
            func.count(),
            func.count().filter(RESULTS.c.status == ResultStatus.SUCCESS),
            func.count().filter(RESULTS.c.status == ResultStatus.FAILED),
            func.count().filter(RESULTS.c.has_conflict.is_(True)),
            func.coalesce(func.sum(RESULTS.c.prompt_tokens), 0),
            func.coalesce(func.sum(RESULTS.c.completion_tokens), 0),
            func.coalesce(func.sum(RESULTS.c.cost_estimate), 0),
        ).where(RESULTS.c.task_id == task_id)
    ).one()
    return {"processed_items": row[0], "success_items": row[1], "failed_items": row[2], "conflict_items": row[3],
            "prompt_tokens": row[4], "completion_tokens": row[5], "cost_estimate": row[6]}


def _final_status(batches: Sequence[Any], counters: dict[str, Any]) -> tuple[TaskStatus, str | None]:
    failed = [b for b in batches if b.status == BatchStatus.FAILED]
    if any(b.status == BatchStatus.CANCELLED for b in batches):
        return TaskStatus.CANCELLED, "cancelled on request"
    if failed:
        return TaskStatus.FAILED, (f"{len(failed)} of {len(batches)} batches failed (first: batch "
                                   f"{failed[0].batch_index}: {failed[0].error}); the other batches' results stand "
                                   "and retry re-runs what failed")
    if counters["failed_items"]:
        return TaskStatus.COMPLETED_WITH_ERRORS, f"{counters['failed_items']} items failed; retry re-screens them"
    return TaskStatus.COMPLETED, None


def finalize_task(ctx: EngineContext, task_id: int) -> str | None:
    """Set the task's final status from its rows, if every batch is finished. Idempotent; returns the status."""
    return ctx.waiting(f"finalize of task {task_id}", lambda: _finalize(ctx, task_id))


def _finalize(ctx: EngineContext, task_id: int) -> str | None:
    with ctx.engine.begin() as conn:
        task = conn.execute(select(TASKS.c.status, TASKS.c.cancel_requested, TASKS.c.task_type, TASKS.c.total_items,
                                   TASKS.c.is_calibration).where(TASKS.c.id == task_id).with_for_update()).first()
        if task is None:
            return None
        if task.status in FINAL_TASK_STATUSES:
            return task.status
        if task.status == TaskStatus.PAUSED and not task.cancel_requested:
            logger.info("task %s: not finalized, it is paused", task_id)
            return None
        batches = conn.execute(
            select(BATCHES.c.status, BATCHES.c.batch_index, BATCHES.c.error)
            .where(BATCHES.c.task_id == task_id).order_by(BATCHES.c.batch_index)
        ).all()
        if any(b.status not in TERMINAL_BATCH_STATUSES for b in batches):
            logger.info("task %s: not finalized, batches still active", task_id)
            return None
        counters = recompute_counters(conn, task_id)
        status, error = _final_status(batches, counters)
        conn.execute(update(TASKS).where(TASKS.c.id == task_id).values(
            status=status, error=error, completed_at=func.now(), updated_at=func.now(),
            started_at=func.coalesce(TASKS.c.started_at, func.now()), **counters))
    logger.info("task %s finalized: %s", task_id, status)
    if status in (TaskStatus.COMPLETED, TaskStatus.COMPLETED_WITH_ERRORS):
        _send_drift_check(ctx, task_id, task.task_type, task.total_items, task.is_calibration)
    return str(status)


def _send_drift_check(ctx: EngineContext, task_id: int, task_type: str, total_items: int,
                      is_calibration: bool) -> None:
    """Queue the drift check of a run that just completed, when it is due (``app/services/drift.py``)."""
    from app.services.drift import drift_check_due

    if not drift_check_due(ctx, task_type, total_items, is_calibration):
        return
    with ctx.session() as session:  # no transaction open: sent at once (the final status is committed)
        ctx.publisher.publish(session, TaskMessage(task_names.DRIFT_CHECK, (task_id,)))
    logger.info("task %s: drift check queued", task_id)


@dataclass
class SweepReport:
    """What one sweep did."""

    resent: list[tuple[int, int]] = field(default_factory=list)
    renamed: list[tuple[int, int]] = field(default_factory=list)   # re-sent under a new id (the old one revoked)
    cancelled: int = 0
    finalized: list[int] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """JSON-able summary (the Celery result of the sweep)."""
        return {"resent": [list(x) for x in self.resent], "renamed": [list(x) for x in self.renamed],
                "cancelled": self.cancelled, "finalized": self.finalized}


def sweep(ctx: EngineContext) -> SweepReport:
    """The safety net, run by beat: re-send lost batches; finalize finished tasks (see module docstring).

    A batch is re-sent when its lease expired (its worker died or lost the database for longer than the TTL),
    or when it was never claimed although it is overdue and either a batch sent after it has been claimed a
    while ago (the queue is FIFO, so its message was fetched by a worker that died) or the broker queue is
    empty. The sweeper never takes a lease itself: a re-sent message must claim like any other delivery.
    """
    report = SweepReport()
    ctx.waiting("sweep", lambda: _resend_lost_batches(ctx, report))
    for task_id in ctx.waiting("sweep", lambda: _tasks_ready_to_finalize(ctx)):
        if finalize_task(ctx, task_id):
            report.finalized.append(task_id)
            settle_chord_results(ctx, task_id)
    if report.resent or report.finalized or report.cancelled:
        logger.info("sweep: %s", report.as_dict())
    return report


def _resend_lost_batches(ctx: EngineContext, report: SweepReport) -> None:
    """Hand expired and lost batches to new deliveries.

    Celery is asked its questions (how long is the queue, which ids were revoked) while no transaction is open,
    so the sweeper never holds a pooled connection while it needs another: the maintenance worker runs on a
    pool of one (``app/db/connections.py``).
    """
    queue_size = ctx.publisher.queue_size()
    with ctx.session() as session, session.begin():
        to_send = _claimable_again(ctx, session, report, queue_size)
    if not to_send:
        return
    revoked = ctx.publisher.revoked([celery_id for *_rest, celery_id in to_send if celery_id])
    with ctx.session() as session, session.begin():
        for batch_id, task_id, batch_index, celery_id in to_send:
            if celery_id in revoked or not celery_id:
                celery_id = str(uuid.uuid4())
                session.execute(update(BATCHES).where(BATCHES.c.id == batch_id).values(celery_task_id=celery_id))
                report.renamed.append((task_id, batch_index))
            logger.warning("sweeper: re-sending batch %s/%s as %s", task_id, batch_index, celery_id)
            ctx.publisher.publish(session, TaskMessage(task_names.SCREEN_BATCH, (task_id, batch_index), celery_id))
            report.resent.append((task_id, batch_index))


def _claimable_again(ctx: EngineContext, session: Session, report: SweepReport,
                     queue_size: int | None) -> list[tuple[int, int, int, str]]:
    """Cancel the free batches of cancelled tasks; make expired and lost batches pending again (returned)."""
    # a paused task's pending batches are not lost: they wait for the resume
    active_task = and_(TASKS.c.id == BATCHES.c.task_id, TASKS.c.status.notin_(FINAL_TASK_STATUSES),
                       TASKS.c.status != TaskStatus.PAUSED)
    # Cancelled tasks: batches nobody holds are cancelled.
    live_task = and_(TASKS.c.id == BATCHES.c.task_id, TASKS.c.status.notin_(FINAL_TASK_STATUSES))
    report.cancelled = cast(CursorResult, session.execute(
        update(BATCHES)
        .where(live_task, TASKS.c.cancel_requested.is_(True),
               BATCHES.c.status.in_(ACTIVE_BATCH_STATUSES), lease_is_free())
        .values(status=BatchStatus.CANCELLED, lease_owner=None, lease_expires_at=None,
                completed_at=func.now(), error="cancelled")
    )).rowcount or 0
    # Expired leases: the holder is gone; hand the batch to a new delivery.
    expired = session.execute(
        update(BATCHES)
        .where(active_task, TASKS.c.cancel_requested.is_(False),
               BATCHES.c.status.in_(ACTIVE_BATCH_STATUSES), BATCHES.c.lease_owner.is_not(None),
               BATCHES.c.lease_expires_at < func.now())
        .values(status=BatchStatus.PENDING, lease_owner=None, lease_expires_at=None, dispatched_at=func.now())
        .returning(BATCHES.c.id, BATCHES.c.task_id, BATCHES.c.batch_index, BATCHES.c.celery_task_id)
    ).all()
    to_send = [(r.id, r.task_id, r.batch_index, r.celery_task_id) for r in expired]
    return to_send + _overdue_unclaimed(ctx, session, queue_size)


def _tasks_ready_to_finalize(ctx: EngineContext) -> list[int]:
    """Tasks whose batches are all finished but which are not final (the chord's own messages may be lost)."""
    unfinished = aliased(ScreeningBatch)
    with ctx.engine.connect() as conn:
        return list(conn.scalars(
            select(TASKS.c.id).where(
                TASKS.c.status.notin_(FINAL_TASK_STATUSES),
                or_(TASKS.c.status != TaskStatus.PAUSED, TASKS.c.cancel_requested.is_(True)),
                exists().where(BATCHES.c.task_id == TASKS.c.id),
                ~exists().where(unfinished.task_id == TASKS.c.id,
                                unfinished.status.notin_(TERMINAL_BATCH_STATUSES)),
            )
        ))


def settle_chord_results(ctx: EngineContext, task_id: int) -> None:
    """Store a result for every finished batch whose Celery id has none (its message was lost or cancelled).

    A chord's ``chord_unlock`` polls its header ids until all are ready; without this it would poll forever for a
    batch the sweeper settled. Its ``finalize_task`` then finds the task final and does nothing.
    """
    with ctx.engine.connect() as conn:
        rows = conn.execute(select(BATCHES.c.celery_task_id, BATCHES.c.status, BATCHES.c.batch_index)
                            .where(BATCHES.c.task_id == task_id)).all()
    for row in rows:
        if not row.celery_task_id:
            continue
        try:
            ctx.publisher.settle(row.celery_task_id, {"status": row.status, "task_id": task_id,
                                                      "batch_index": row.batch_index, "settled": True})
        except Exception:  # noqa: BLE001 - only tidies Celery's bookkeeping; the task is final already
            logger.warning("could not settle the chord result of batch %s/%s", task_id, row.batch_index,
                           exc_info=True)


def _overdue_unclaimed(ctx: EngineContext, session: Session,
                       queue_size: int | None) -> list[tuple[int, int, int, str]]:
    """Pending batches whose message is evidently lost (overtaken by a later one, or the queue, measured just
    before, was empty); their dispatch clock is restarted."""
    grace = func.make_interval(0, 0, 0, 0, 0, 0, float(ctx.settings.dispatch_grace))
    later = aliased(ScreeningBatch)
    base = and_(TASKS.c.id == BATCHES.c.task_id, TASKS.c.status.notin_(FINAL_TASK_STATUSES),
                TASKS.c.status != TaskStatus.PAUSED, TASKS.c.cancel_requested.is_(False),
                BATCHES.c.status == BatchStatus.PENDING, BATCHES.c.lease_owner.is_(None),
                BATCHES.c.dispatched_at < func.now() - grace)
    sent_after = or_(later.dispatched_at > BATCHES.c.dispatched_at,
                     and_(later.dispatched_at == BATCHES.c.dispatched_at, later.task_id == BATCHES.c.task_id,
                          later.batch_index > BATCHES.c.batch_index))
    overtaken = exists().where(sent_after, later.claimed_at > BATCHES.c.dispatched_at,
                               later.claimed_at < func.now() - grace, later.id != BATCHES.c.id)
    candidates = session.execute(
        select(BATCHES.c.id, BATCHES.c.task_id, BATCHES.c.batch_index, BATCHES.c.celery_task_id,
               overtaken.label("overtaken")).where(base).with_for_update(of=BATCHES, skip_locked=True)
    ).all()
    if not candidates:
        return []
    chosen = [c for c in candidates if c.overtaken]
    if len(chosen) < len(candidates) and queue_size == 0:
        chosen = list(candidates)
    if not chosen:
        return []
    session.execute(update(BATCHES).where(BATCHES.c.id.in_([c.id for c in chosen])).values(dispatched_at=func.now()))
    return [(c.id, c.task_id, c.batch_index, c.celery_task_id) for c in chosen]
