"""Runs: start a task of any kind, cancel it, retry what failed. Each is one transaction; messages go after commit.

Starting creates the task and all its batch rows in ONE transaction; the chord
``group(screen_batch(task, i) …) | finalize_task(task)`` is sent after commit, with the Celery ids recorded in
the batch rows (so the sweeper can re-send a lost header under the same id) and the chord id on the task.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app import task_names
from app.models import ScreeningBatch, ScreeningTask
from app.models.statuses import (
    ACTIVE_BATCH_STATUSES,
    ACTIVE_TASK_STATUSES,
    FINAL_TASK_STATUSES,
    BatchStatus,
    ResultStatus,
    TaskStatus,
)
from app.services.engine.config_lock import config_differences
from app.services.engine.context import EngineContext
from app.services.engine.errors import (
    BudgetTooLow,
    NothingToRetry,
    TaskAlreadyActive,
    TaskAlreadyFinished,
    TaskNotFinished,
    TaskNotPaused,
    raise_if_another_run_is_active,
)
from app.services.engine.leases import BATCHES, TASKS, lease_is_free
from app.services.engine.publisher import TaskMessage
from app.services.engine.recovery import RESULTS, finalize_task, recompute_counters
from app.services.kinds import TaskScope, get_kind

logger = logging.getLogger(__name__)


def split_into_batches(ids: list[int], size: int) -> list[list[int]]:
    """``ids`` in order, cut into consecutive chunks of ``size`` (the last may be shorter)."""
    if size < 1:
        raise ValueError("batch size must be at least 1")
    return [ids[start:start + size] for start in range(0, len(ids), size)]


def start_task(ctx: EngineContext, session: Session, task_type: str, scope: TaskScope,
               batch_size: int | None = None, budget_usd: float | None = None,
               is_calibration: bool = False) -> ScreeningTask:
    """Create a task of kind ``task_type`` and all its batch rows in one transaction; send the chord after commit.

    ``budget_usd``: the run pauses before its next item would pass it (``budget.py``). ``is_calibration``: a
    calibration run; a later run of the project and kind records the latest finished calibration it follows and
    how its locked configuration differs from it.

    Raises UnknownTaskKind, KindInputError (bad params or batch size), NoModelsConfigured, NothingToProcess
    (no items) or TaskAlreadyActive (this project has a pending, running or paused task of this kind).
    """
    kind = get_kind(task_type)
    snapshot = kind.snapshot(ctx.config)
    params = kind.normalise_params(scope.params)
    locked = kind.locked_config(snapshot)
    calibration_id: int | None = None
    differences: list[dict[str, Any]] | None = None
    if scope.project_id is not None:
        active = session.scalar(select(ScreeningTask.id).where(
            ScreeningTask.project_id == scope.project_id, ScreeningTask.task_type == task_type,
            ScreeningTask.status.in_((*ACTIVE_TASK_STATUSES, TaskStatus.PAUSED))))
        if active is not None:
            raise TaskAlreadyActive(f"Task {active} of this project is still running; cancel it or wait for it.")
        if not is_calibration:
            calibration = session.execute(
                select(ScreeningTask.id, ScreeningTask.locked_config).where(
                    ScreeningTask.project_id == scope.project_id, ScreeningTask.task_type == task_type,
                    ScreeningTask.is_calibration.is_(True),
                    ScreeningTask.status.in_((TaskStatus.COMPLETED, TaskStatus.COMPLETED_WITH_ERRORS)))
                .order_by(ScreeningTask.id.desc()).limit(1)).first()
            if calibration is not None:
                calibration_id = calibration.id
                differences = config_differences(calibration.locked_config or {}, locked)
    ids = kind.list_items(session, TaskScope(scope.owner_id, scope.project_id, params))
    size = kind.chunk.size_for(len(ids), batch_size)
    chunks = split_into_batches(ids, size)
    now = datetime.now(UTC)
    task = ScreeningTask(project_id=scope.project_id, owner_id=scope.owner_id, task_type=task_type,
                         status=TaskStatus.PENDING, params=params, total_items=len(ids), total_batches=len(chunks),
                         batch_size=size, model_config=snapshot, attempt=1, chord_id=str(uuid.uuid4()),
                         created_at=now, updated_at=now, budget_usd=_budget(budget_usd), is_calibration=is_calibration,
                         locked_config=locked, calibration_task_id=calibration_id, config_differences=differences)
    session.add(task)
    try:
        session.flush()
    except IntegrityError as exc:  # the one-active-task index: a concurrent start won the race
        session.rollback()
        raise_if_another_run_is_active(exc)
        raise
    session.execute(pg_insert(BATCHES).values([
        {"task_id": task.id, "batch_index": index, "item_ids": chunk, "size": len(chunk),
         "status": BatchStatus.PENDING, "cursor": 0, "attempts": 0, "celery_task_id": str(uuid.uuid4()),
         "dispatched_at": func.now()}
        for index, chunk in enumerate(chunks)
    ]))
    dispatch_chord(ctx, session, task.id, task.chord_id, list(range(len(chunks))))
    session.commit()
    logger.info("task %s (%s): %d items in %d batches of %d", task.id, task_type, len(ids), len(chunks), size)
    return task


def dispatch_chord(ctx: EngineContext, session: Session, task_id: int, chord_id: str | None,
                   batch_indexes: list[int]) -> None:
    """Queue ``group(screen_batch …) | finalize_task`` for the batch rows of this transaction (sent after commit)."""
    session.flush()
    rows = session.execute(
        select(ScreeningBatch.batch_index, ScreeningBatch.celery_task_id)
        .where(ScreeningBatch.task_id == task_id, ScreeningBatch.batch_index.in_(batch_indexes))
        .order_by(ScreeningBatch.batch_index)
    ).all()
    header = [TaskMessage(task_names.SCREEN_BATCH, (task_id, index), celery_id) for index, celery_id in rows]
    body = TaskMessage(task_names.FINALIZE_TASK, (task_id,), chord_id)
    ctx.publisher.publish_chord(session, header, body, ctx.settings.chord_interval)


def cancel_task(ctx: EngineContext, session: Session, task: ScreeningTask) -> ScreeningTask:
    """Ask a run to stop: running batches stop at their next checkpoint; batches not started are cancelled."""
    if task.status in FINAL_TASK_STATUSES:
        raise TaskAlreadyFinished(f"Task {task.id} is already {task.status}.")
    task_id = task.id
    session.execute(
        update(BATCHES)
        .where(BATCHES.c.task_id == task_id, BATCHES.c.status.in_(ACTIVE_BATCH_STATUSES), lease_is_free())
        .values(status=BatchStatus.CANCELLED, lease_owner=None, lease_expires_at=None, completed_at=func.now(),
                error="cancelled before it ran")
    )
    session.execute(update(TASKS).where(TASKS.c.id == task_id).values(cancel_requested=True, updated_at=func.now()))
    session.commit()
    finalize_task(ctx, task_id)
    session.expire_all()
    return _reloaded(session, task_id)


def retry_task(ctx: EngineContext, session: Session, task: ScreeningTask) -> ScreeningTask:
    """Re-queue a finished task's failed items and its failed / cancelled batches as a new attempt."""
    task_id = task.id
    session.rollback()  # start from a fresh transaction: the row lock below must see the latest status
    current = session.execute(select(TASKS.c.status).where(TASKS.c.id == task_id).with_for_update()).scalar_one()
    if current not in FINAL_TASK_STATUSES:
        session.rollback()
        raise TaskNotFinished(f"Task {task_id} is {current}; retry works on a finished task.")
    rerun = set(session.scalars(
        select(RESULTS.c.batch_index).where(RESULTS.c.task_id == task_id, RESULTS.c.status == ResultStatus.FAILED)
        .distinct()))
    rerun |= set(session.scalars(select(BATCHES.c.batch_index).where(
        BATCHES.c.task_id == task_id, BATCHES.c.status != BatchStatus.DONE)))
    if not rerun:
        session.rollback()
        raise NothingToRetry(f"Task {task_id} has no failed items or unfinished batches to retry.")
    session.execute(RESULTS.delete().where(RESULTS.c.task_id == task_id, RESULTS.c.status == ResultStatus.FAILED))
    requeue_batches(session, task_id, sorted(rerun), cursor=0)
    counters = recompute_counters(session, task_id)
    chord_id = str(uuid.uuid4())
    try:
        session.execute(update(TASKS).where(TASKS.c.id == task_id).values(
            status=TaskStatus.RUNNING, attempt=TASKS.c.attempt + 1, cancel_requested=False, completed_at=None,
            error=None, updated_at=func.now(), chord_id=chord_id, **counters))
    except IntegrityError as exc:  # another run of this project and kind is active meanwhile
        session.rollback()
        raise_if_another_run_is_active(exc)
        raise
    dispatch_chord(ctx, session, task_id, chord_id, sorted(rerun))
    session.commit()
    logger.info("task %s: retry re-queues batches %s", task_id, sorted(rerun))
    session.expire_all()
    return _reloaded(session, task_id)


def requeue_batches(session: Session, task_id: int, batch_indexes: list[int], **reset: Any) -> None:
    """Make these batches pending again under new Celery ids (``reset``: e.g. ``cursor=0`` to start over; without
    it a batch continues from its checkpoint). The caller sends them with ``dispatch_chord`` in the same
    transaction — retry and resume share this path."""
    for index in batch_indexes:
        session.execute(
            update(BATCHES).where(BATCHES.c.task_id == task_id, BATCHES.c.batch_index == index)
            .values(status=BatchStatus.PENDING, lease_owner=None, lease_expires_at=None, error=None,
                    completed_at=None, celery_task_id=str(uuid.uuid4()), dispatched_at=func.now(), **reset)
        )


def resume_task(ctx: EngineContext, session: Session, task: ScreeningTask, budget_usd: float) -> ScreeningTask:
    """Raise a paused task's budget and re-send its unfinished batches; they continue from their checkpoints.

    Raises TaskNotPaused (409) unless the task is paused, BudgetTooLow (422) when ``budget_usd`` is not above what
    the run has spent. A batch whose holder is still finishing its last items keeps running (its lease is live);
    the others are re-queued under a new chord, whose ``finalize_task`` completes the task.
    """
    task_id = task.id
    session.rollback()  # a fresh transaction: the row lock below must see the latest status and spend
    current = session.execute(select(TASKS.c.status, TASKS.c.budget_spent_usd, TASKS.c.cancel_requested)
                              .where(TASKS.c.id == task_id).with_for_update()).one()
    if current.status != TaskStatus.PAUSED or current.cancel_requested:
        session.rollback()
        raise TaskNotPaused(f"Task {task_id} is {current.status}; only a paused task can be resumed.")
    spent = float(current.budget_spent_usd or 0)
    if budget_usd <= spent:
        session.rollback()
        raise BudgetTooLow(f"budget_usd must be above what the run has spent already (USD {spent:.6f}).")
    unfinished = sorted(session.scalars(select(BATCHES.c.batch_index).where(
        BATCHES.c.task_id == task_id, BATCHES.c.status.in_(ACTIVE_BATCH_STATUSES), lease_is_free())))
    requeue_batches(session, task_id, unfinished)
    chord_id = str(uuid.uuid4())
    session.execute(update(TASKS).where(TASKS.c.id == task_id).values(
        status=TaskStatus.RUNNING, paused_reason=None, budget_usd=_budget(budget_usd), chord_id=chord_id,
        updated_at=func.now()))
    if unfinished:
        dispatch_chord(ctx, session, task_id, chord_id, unfinished)
    session.commit()
    logger.info("task %s: resumed with a budget of USD %s; batches %s re-sent", task_id, budget_usd, unfinished)
    if not unfinished:  # every batch finished meanwhile: nothing to send, finalize from the rows
        finalize_task(ctx, task_id)
    session.expire_all()
    return _reloaded(session, task_id)


def _budget(value: float | None) -> Decimal | None:
    return None if value is None else Decimal(str(round(float(value), 6)))


def _reloaded(session: Session, task_id: int) -> Any:
    return session.get(ScreeningTask, task_id)
