"""The screening engine: start a run, claim / run / checkpoint a batch, finalize, cancel, retry, sweep.

Database rows are the truth, Celery messages are hints. A run is a ``screening_tasks`` row with its
``screening_batches`` (the checkpoint rows) and one ``screening_results`` row per record. Every state change
is one conditional SQL statement or one short transaction:

- a delivery *claims* a batch with one UPDATE that succeeds only while the batch is not finished and its
  lease is free or expired (the database clock decides, so hosts may disagree about the time);
- a *checkpoint* writes the new result rows (``ON CONFLICT DO NOTHING``), the cursor, the task counters
  (incremented by exactly the rows inserted) and the lease renewal in ONE transaction, and only while this
  delivery still owns the lease;
- *finalize* recomputes the counters from rows and sets the final status, idempotently;
- the *sweeper* re-sends batches whose lease expired (or whose message was evidently lost) with the same
  Celery task id, and finalizes tasks whose batches are all finished.

Celery is not imported here except for sending by name; ``tasks/screening.py`` wraps these functions.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import Connection, and_, exists, func, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session, aliased

from app import task_names
from app.config import EngineSettings
from app.extensions import db
from app.models import (
    Literature,
    Project,
    ScreeningBatch,
    ScreeningResult,
    ScreeningTask,
)
from app.models.screening import FINAL_TASK_STATUSES, TERMINAL_BATCH_STATUSES
from app.services.chunking import chunk_size_for, split_into_batches

logger = logging.getLogger(__name__)

BATCHES = ScreeningBatch.__table__
TASKS = ScreeningTask.__table__
RESULTS = ScreeningResult.__table__
ACTIVE_BATCH_STATUSES = ("pending", "running")


# --------------------------------------------------------------------------------------------- leases


def lease_deadline(ttl: float) -> Any:
    """SQL expression: the database's now() plus ``ttl`` seconds."""
    return func.now() + func.make_interval(0, 0, 0, 0, 0, 0, float(ttl))


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


# --------------------------------------------------------------------------------------------- errors


class ScreeningError(Exception):
    """A request the engine refuses (the API maps it to 409)."""


class NothingToScreen(ScreeningError):
    """The project has no records."""


class TaskAlreadyActive(ScreeningError):
    """A run of this project is still pending or running."""


class TaskNotFinished(ScreeningError):
    """Retry of a task that is still running."""


class NothingToRetry(ScreeningError):
    """Retry of a task without failed items, failed or cancelled batches."""


class TaskAlreadyFinished(ScreeningError):
    """Cancel of a task that already reached a final status."""


class LeaseLost(Exception):
    """This delivery no longer owns the batch's lease (it expired and was taken, or the batch was reset)."""


# --------------------------------------------------------------------------------------------- start


def start_screening(session: Session, project: Project, task_type: str = "title_abstract",
                    batch_size: int | None = None) -> ScreeningTask:
    """Create the task and all its batch rows in one transaction, then send the chord (after commit).

    Raises NoModelsConfigured (no SCREENING_MODELS), NothingToScreen (no records) or TaskAlreadyActive.
    """
    from app.services.record_screening import model_config_snapshot

    snapshot = model_config_snapshot(current_app.config)  # raises NoModelsConfigured
    active = session.scalar(
        select(ScreeningTask.id).where(ScreeningTask.project_id == project.id,
                                       ScreeningTask.status.in_(("pending", "running")))
    )
    if active is not None:
        raise TaskAlreadyActive(f"Task {active} of this project is still running; cancel it or wait for it.")
    ids = list(session.scalars(select(Literature.id).where(Literature.project_id == project.id)
                               .order_by(Literature.id)))
    if not ids:
        raise NothingToScreen("The project has no records to screen; import some first.")
    size = chunk_size_for(task_type, batch_size)
    chunks = split_into_batches(ids, size)
    now = datetime.now(UTC)
    task = ScreeningTask(project_id=project.id, task_type=task_type, status="pending", total_items=len(ids),
                         total_batches=len(chunks), batch_size=size, model_config=snapshot, attempt=1,
                         created_at=now, updated_at=now)
    session.add(task)
    session.flush()
    session.execute(pg_insert(BATCHES).values([
        {"task_id": task.id, "batch_index": index, "literature_ids": chunk, "size": len(chunk),
         "status": "pending", "cursor": 0, "attempts": 0, "celery_task_id": str(uuid.uuid4()),
         "dispatched_at": func.now()}
        for index, chunk in enumerate(chunks)
    ]))
    session.commit()
    logger.info("task %s: %d records in %d batches of %d", task.id, len(ids), len(chunks), size)
    dispatch_chord(session, task.id, list(range(len(chunks))))
    return task


def dispatch_chord(session: Session, task_id: int, batch_indexes: list[int]) -> str | None:
    """Send ``group(screen_batch …) | finalize_task`` for committed batch rows, by task name.

    The header messages carry the celery task ids recorded in the batch rows, so the sweeper can re-send a lost
    one under the same id and the chord still completes. A failed send is logged: the rows are committed and the
    sweeper will send what never arrived.
    """
    from celery import chord

    celery = current_app.extensions["celery"]
    rows = session.execute(
        select(ScreeningBatch.batch_index, ScreeningBatch.celery_task_id)
        .where(ScreeningBatch.task_id == task_id, ScreeningBatch.batch_index.in_(batch_indexes))
        .order_by(ScreeningBatch.batch_index)
    ).all()
    header = [celery.signature(task_names.SCREEN_BATCH, args=(task_id, index), task_id=celery_id)
              for index, celery_id in rows]
    body = celery.signature(task_names.FINALIZE_TASK, args=(task_id,), immutable=True)
    settings = EngineSettings.from_config()
    try:
        result = chord(header, body).apply_async(interval=settings.chord_interval)
    except Exception:  # noqa: BLE001 - the sweeper recovers unsent batches; never fail the committed start
        logger.exception("task %s: sending the chord failed; the sweeper will dispatch its batches", task_id)
        return None
    session.execute(update(ScreeningTask).where(ScreeningTask.id == task_id).values(chord_id=result.id))
    session.commit()
    return result.id


# --------------------------------------------------------------------------------------------- claim


@dataclass
class ClaimedBatch:
    """A batch this delivery holds the lease of."""

    batch_id: int
    task_id: int
    batch_index: int
    owner: str
    cursor: int
    literature_ids: list[int]


@dataclass
class BatchOutcome:
    """What a delivery of ``screen_batch`` did: screened, found the batch finished, or found it busy."""

    status: str                 # done | failed | cancelled | busy | lease_lost | missing
    task_id: int
    batch_index: int
    screened: int = 0
    checkpoint_ms: list[float] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """JSON-able summary (the Celery result of the batch)."""
        return {"status": self.status, "task_id": self.task_id, "batch_index": self.batch_index,
                "screened": self.screened, "checkpoint_ms": [round(v, 3) for v in self.checkpoint_ms]}


def claim_batch(task_id: int, batch_index: int, owner: str, settings: EngineSettings) -> ClaimedBatch | BatchOutcome:
    """Take the batch's lease with one conditional UPDATE; else say why not (finished, cancelled or busy)."""
    engine = db.engine
    with engine.begin() as conn:
        task = conn.execute(
            select(TASKS.c.status, TASKS.c.cancel_requested).where(TASKS.c.id == task_id)
        ).first()
        if task is None:
            return BatchOutcome("missing", task_id, batch_index)
        if task.cancel_requested or task.status in FINAL_TASK_STATUSES:
            conn.execute(
                update(BATCHES)
                .where(BATCHES.c.task_id == task_id, BATCHES.c.batch_index == batch_index,
                       BATCHES.c.status.in_(ACTIVE_BATCH_STATUSES), lease_is_free())
                .values(status="cancelled", lease_owner=None, lease_expires_at=None,
                        completed_at=func.now(), error="cancelled before it ran")
            )
            claimable = False
        else:
            claimable = True
    if claimable:
        claimed = _try_claim(task_id, batch_index, owner, settings, lease_is_free())
        if claimed is not None:
            return claimed
    with engine.connect() as conn:
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
        claimed = _try_claim(task_id, batch_index, owner, settings, BATCHES.c.lease_owner == current.lease_owner)
        if claimed is not None:
            return claimed
    return BatchOutcome("busy", task_id, batch_index)


def lease_is_free() -> Any:
    """SQL condition: nobody holds the batch's lease, or the holder's lease has expired."""
    return or_(BATCHES.c.lease_owner.is_(None), BATCHES.c.lease_expires_at.is_(None),
               BATCHES.c.lease_expires_at < func.now())


def _try_claim(task_id: int, batch_index: int, owner: str, settings: EngineSettings,
               condition: Any) -> ClaimedBatch | None:
    with db.engine.begin() as conn:
        row = conn.execute(
            update(BATCHES)
            .where(BATCHES.c.task_id == task_id, BATCHES.c.batch_index == batch_index,
                   BATCHES.c.status.in_(ACTIVE_BATCH_STATUSES), condition)
            .values(status="running", lease_owner=owner, lease_expires_at=lease_deadline(settings.lease_ttl),
                    attempts=BATCHES.c.attempts + 1, claimed_at=func.now(),
                    started_at=func.coalesce(BATCHES.c.started_at, func.now()), error=None)
            .returning(BATCHES.c.id, BATCHES.c.cursor, BATCHES.c.literature_ids)
        ).first()
        if row is None:
            return None
        conn.execute(
            update(TASKS).where(TASKS.c.id == task_id, TASKS.c.status == "pending")
            .values(status="running", started_at=func.coalesce(TASKS.c.started_at, func.now()),
                    updated_at=func.now())
        )
    return ClaimedBatch(row.id, task_id, batch_index, owner, row.cursor, list(row.literature_ids))


# --------------------------------------------------------------------------------------------- heartbeat


class LeaseHeartbeat:
    """A thread renewing the lease every TTL/3 while slow LLM calls run; sets ``lost`` if the lease is gone."""

    def __init__(self, engine: Any, batch_id: int, owner: str, ttl: float) -> None:
        self.engine = engine
        self.batch_id = batch_id
        self.owner = owner
        self.ttl = ttl
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"lease-{batch_id}", daemon=True)

    def __enter__(self) -> LeaseHeartbeat:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        interval = max(0.2, self.ttl / 3)
        while not self._stop.wait(interval):
            try:
                with self.engine.begin() as conn:
                    renewed = conn.execute(
                        update(BATCHES)
                        .where(BATCHES.c.id == self.batch_id, BATCHES.c.lease_owner == self.owner,
                               BATCHES.c.status == "running")
                        .values(lease_expires_at=lease_deadline(self.ttl))
                        .returning(BATCHES.c.id)
                    ).first()
            except DBAPIError as exc:
                logger.warning("batch %s: lease renewal failed (%s); retrying", self.batch_id, type(exc).__name__)
                continue
            if renewed is None:
                logger.warning("batch %s: lease lost by %s", self.batch_id, self.owner)
                self.lost.set()
                return


# --------------------------------------------------------------------------------------------- run


def run_batch(task_id: int, batch_index: int, owner: str | None = None) -> BatchOutcome:
    """Claim the batch and screen it from its cursor, checkpointing as it goes.

    Returns the outcome; raises LLMUnavailable or a database error for Celery to retry (the lease is then
    released by the caller via ``release_batch`` so the retry can claim at once).
    """
    settings = EngineSettings.from_config()
    owner = owner or new_lease_owner()
    claim = claim_batch(task_id, batch_index, owner, settings)
    if isinstance(claim, BatchOutcome):
        logger.info("batch %s/%s: not claimed (%s)", task_id, batch_index, claim.status)
        return claim
    return BatchRunner(claim, settings).run()


class BatchRunner:
    """Screens one claimed batch with bounded concurrency and checkpoints (see module docstring)."""

    def __init__(self, claim: ClaimedBatch, settings: EngineSettings) -> None:
        self.claim = claim
        self.settings = settings
        self.app = current_app._get_current_object()  # type: ignore[attr-defined]
        self.engine = db.engine
        self.outcome = BatchOutcome("done", claim.task_id, claim.batch_index)
        self._conn: Connection | None = None

    def run(self) -> BatchOutcome:
        """Screen every item from the cursor; the final checkpoint marks the batch done (or cancelled)."""
        from app.services.record_screening import build_screener

        claim = self.claim
        task, criteria, records = self._load_work()
        screener = build_screener(task.model_config, self.app.config)
        try:
            with LeaseHeartbeat(self.engine, claim.batch_id, claim.owner, self.settings.lease_ttl) as heartbeat:
                return self._screen(screener, criteria, records, heartbeat)
        finally:
            screener.close()
            self._release_connection()

    def _load_work(self) -> tuple[Any, Any, list[Any]]:
        from app.services.record_screening import Criteria, RecordText

        claim = self.claim
        ids = claim.literature_ids
        with self.engine.connect() as conn:
            task = conn.execute(select(TASKS.c.model_config, TASKS.c.project_id)
                                .where(TASKS.c.id == claim.task_id)).one()
            project = conn.execute(select(Project.picos, Project.inclusion_criteria, Project.exclusion_criteria)
                                   .where(Project.id == task.project_id)).one()
            done = set(conn.scalars(select(RESULTS.c.literature_id).where(
                RESULTS.c.task_id == claim.task_id, RESULTS.c.literature_id.in_(ids))))
            rows = {r.id: r for r in conn.execute(
                select(Literature.id, Literature.title, Literature.abstract).where(Literature.id.in_(ids)))}
        criteria = Criteria(picos=dict(project.picos or {}), inclusion_criteria=project.inclusion_criteria,
                            exclusion_criteria=project.exclusion_criteria)
        self.done_positions = [lit_id in done for lit_id in ids]
        records = []
        for position, lit_id in enumerate(ids):
            if position < claim.cursor or lit_id in done:
                self.done_positions[position] = True
                continue
            row = rows.get(lit_id)
            if row is None:  # the record was deleted since the run started: nothing to screen
                self.done_positions[position] = True
                continue
            records.append((position, RecordText(literature_id=lit_id, title=row.title or "",
                                                 abstract=row.abstract)))
        return task, criteria, records

    def _cursor(self) -> int:
        cursor = 0
        while cursor < len(self.done_positions) and self.done_positions[cursor]:
            cursor += 1
        return cursor

    def _screen(self, screener: Any, criteria: Any, records: list[Any], heartbeat: LeaseHeartbeat) -> BatchOutcome:
        settings = self.settings
        concurrency = max(1, int(getattr(screener, "concurrency", 1) or 1))
        # At most `window` items are in flight or done-but-uncommitted: a kill redoes no more than that. Commit
        # as soon as waiting longer would leave a concurrency slot idle.
        window = max(settings.checkpoint_every, concurrency)
        commit_at = max(1, window - concurrency)
        pending = list(reversed(records))
        in_flight: dict[Future, tuple[int, int, float]] = {}
        uncommitted: list[tuple[int, dict[str, Any]]] = []
        last_checkpoint = time.monotonic()
        stopping: str | None = None
        failure: BaseException | None = None

        def screen_one(record: Any) -> Any:
            with self.app.app_context():
                return screener.screen(criteria, record)

        with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="screen") as pool:
            while True:
                while (stopping is None and pending and len(in_flight) < concurrency
                       and len(in_flight) + len(uncommitted) < window):
                    position, record = pending.pop()
                    future = pool.submit(screen_one, record)
                    in_flight[future] = (position, record.literature_id, time.monotonic())
                if in_flight:
                    timeout = max(0.05, settings.checkpoint_seconds - (time.monotonic() - last_checkpoint))
                    finished, _ = wait(list(in_flight), timeout=timeout, return_when=FIRST_COMPLETED)
                    for future in finished:
                        position, lit_id, started = in_flight.pop(future)
                        try:
                            screening = future.result()
                        except Exception as exc:  # noqa: BLE001 - LLMUnavailable or a bug: stop, keep what is done
                            if failure is None:
                                failure = exc
                            stopping = stopping or "error"
                            continue
                        uncommitted.append((position, self._result_row(lit_id, screening, started)))
                if heartbeat.lost.is_set():
                    raise LeaseLost(f"batch {self.claim.task_id}/{self.claim.batch_index}")
                drained = not in_flight and (stopping is not None or not pending)
                due = (len(uncommitted) >= commit_at
                       or (uncommitted and time.monotonic() - last_checkpoint >= settings.checkpoint_seconds))
                if drained or due:
                    final_status = None
                    if drained and failure is None:
                        final_status = "cancelled" if stopping == "cancel" and pending else "done"
                    cancel = self._checkpoint(uncommitted, final_status)
                    uncommitted = []
                    last_checkpoint = time.monotonic()
                    if final_status is not None:
                        self.outcome.status = final_status
                        return self.outcome
                    if drained:  # stopped by an error: the checkpoint kept the finished items
                        assert failure is not None
                        raise failure
                    if cancel and stopping is None:
                        logger.info("batch %s/%s: cancel requested; stopping", self.claim.task_id,
                                    self.claim.batch_index)
                        stopping = "cancel"

    def _result_row(self, lit_id: int, screening: Any, started: float) -> dict[str, Any]:
        # a shallow copy is JSON-able already (to_dict's deep copy costs ~0.1 ms a record)
        decisions = [dict(vars(d)) if hasattr(d, "__dict__") else d.to_dict() for d in screening.decisions]
        return {
            "task_id": self.claim.task_id, "literature_id": lit_id, "batch_index": self.claim.batch_index,
            "decisions": decisions, "final_decision": screening.final_decision,
            "has_conflict": bool(screening.has_conflict),
            "manual_review_required": bool(screening.manual_review_required),
            "status": "failed" if screening.failed else "success",
            "error": screening.error if screening.failed else None,
            "prompt_tokens": int(screening.prompt_tokens or 0),
            "completion_tokens": int(screening.completion_tokens or 0),
            "cost_estimate": float(screening.cost or 0.0),
            "duration_ms": (time.monotonic() - started) * 1000.0,
        }

    def _release_connection(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:  # noqa: BLE001 - a dead connection: the pool discards it
                logger.debug("closing the checkpoint connection failed", exc_info=True)
            self._conn = None

    def _drop_connection(self) -> None:
        if self._conn is not None:
            try:
                self._conn.invalidate()
                self._conn.close()
            except Exception:  # noqa: BLE001 - the connection is being discarded anyway
                pass
            self._conn = None

    def _checkpoint(self, uncommitted: list[tuple[int, dict[str, Any]]], final_status: str | None) -> bool:
        """Commit results + cursor + counters + lease in one transaction (retried on disconnects)."""
        for position, _row in uncommitted:
            self.done_positions[position] = True
        cursor = self._cursor()
        rows = [row for _position, row in uncommitted]
        delays = (0.5, 1.0, 2.0)
        for attempt in range(len(delays) + 1):
            started = time.perf_counter()
            try:
                if self._conn is None:  # held for the batch: no pool checkout / pre-ping round trip per checkpoint
                    self._conn = self.engine.connect()
                with self._conn.begin():
                    cancel = write_checkpoint(self._conn, self.claim, rows, cursor, final_status, self.settings)
            except OperationalError as exc:
                self._drop_connection()
                if attempt == len(delays):
                    raise
                logger.warning("batch %s/%s: checkpoint failed (%s); retrying", self.claim.task_id,
                               self.claim.batch_index, type(exc).__name__)
                time.sleep(delays[attempt])
                continue
            elapsed = (time.perf_counter() - started) * 1000.0
            self.outcome.checkpoint_ms.append(elapsed)
            self.outcome.screened += len(rows)
            logger.debug("batch %s/%s: checkpoint %d rows, cursor %d, %.1f ms", self.claim.task_id,
                         self.claim.batch_index, len(rows), cursor, elapsed)
            return cancel
        raise AssertionError("unreachable")


# One statement, one round trip: renew the lease and move the cursor (only while this delivery owns it), insert
# the new results (ON CONFLICT DO NOTHING), and add exactly the inserted rows to the task's counters. If the lease
# is gone, the lease CTE is empty and nothing else is written either.
CHECKPOINT_SQL = text("""
WITH lease AS (
    UPDATE screening_batches SET
        cursor = :cursor,
        last_checkpoint_at = now(),
        status = COALESCE(CAST(:final_status AS varchar), status),
        lease_owner = CASE WHEN CAST(:final_status AS varchar) IS NULL THEN lease_owner END,
        lease_expires_at = CASE WHEN CAST(:final_status AS varchar) IS NULL
                                THEN now() + make_interval(secs => CAST(:ttl AS double precision)) END,
        completed_at = CASE WHEN CAST(:final_status AS varchar) IS NULL THEN completed_at ELSE now() END,
        error = CASE WHEN CAST(:final_status AS varchar) = 'cancelled' THEN 'cancelled'
                     WHEN CAST(:final_status AS varchar) IS NULL THEN error END
    WHERE id = :batch_id AND lease_owner = :owner AND status = 'running'
    RETURNING task_id
), incoming AS (
    SELECT * FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS r(
        literature_id bigint, decisions jsonb, final_decision varchar, has_conflict boolean,
        manual_review_required boolean, status varchar, error text, prompt_tokens integer,
        completion_tokens integer, cost_estimate numeric, duration_ms double precision)
), inserted AS (
    INSERT INTO screening_results (task_id, literature_id, batch_index, decisions, final_decision, has_conflict,
                                   manual_review_required, status, error, prompt_tokens, completion_tokens,
                                   cost_estimate, duration_ms, created_at)
    SELECT lease.task_id, i.literature_id, :batch_index, i.decisions, i.final_decision, i.has_conflict,
           i.manual_review_required, i.status, i.error, i.prompt_tokens, i.completion_tokens, i.cost_estimate,
           i.duration_ms, now()
    FROM incoming i CROSS JOIN lease
    ON CONFLICT (task_id, literature_id) DO NOTHING
    RETURNING status, has_conflict, prompt_tokens, completion_tokens, cost_estimate
), added AS (
    SELECT count(*) AS n, count(*) FILTER (WHERE status = 'success') AS success,
           count(*) FILTER (WHERE status = 'failed') AS failed, count(*) FILTER (WHERE has_conflict) AS conflict,
           COALESCE(sum(prompt_tokens), 0) AS prompt_tokens, COALESCE(sum(completion_tokens), 0) AS completion_tokens,
           COALESCE(sum(cost_estimate), 0) AS cost
    FROM inserted
), counted AS (
    UPDATE screening_tasks t SET
        processed_items = t.processed_items + a.n, success_items = t.success_items + a.success,
        failed_items = t.failed_items + a.failed, conflict_items = t.conflict_items + a.conflict,
        prompt_tokens = t.prompt_tokens + a.prompt_tokens,
        completion_tokens = t.completion_tokens + a.completion_tokens,
        cost_estimate = t.cost_estimate + a.cost, updated_at = now()
    FROM added a, lease
    WHERE t.id = lease.task_id AND a.n > 0
    RETURNING t.id
)
SELECT (SELECT count(*) FROM lease) AS owned,
       (SELECT cancel_requested FROM screening_tasks WHERE id = :task_id) AS cancel_requested,
       (SELECT count(*) FROM counted) AS counted
""")


def write_checkpoint(conn: Connection, claim: ClaimedBatch, rows: list[dict[str, Any]], cursor: int,
                     final_status: str | None, settings: EngineSettings) -> bool:
    """A checkpoint's one statement (see CHECKPOINT_SQL); raises LeaseLost if this delivery lost the batch.

    Returns whether a cancel was requested for the task.
    """
    result = conn.execute(CHECKPOINT_SQL, {
        "cursor": cursor, "final_status": final_status, "ttl": float(settings.lease_ttl),
        "batch_id": claim.batch_id, "owner": claim.owner, "batch_index": claim.batch_index,
        "task_id": claim.task_id, "rows": json.dumps(rows, default=str),
    }).one()
    if not result.owned:
        raise LeaseLost(f"batch {claim.task_id}/{claim.batch_index} is no longer leased by {claim.owner}")
    return bool(result.cancel_requested)


# --------------------------------------------------------------------------------------------- retry / fail


def release_batch(task_id: int, batch_index: int, due_in: float, error: str) -> None:
    """Before a Celery retry: free the lease so the retry can claim, and note when the retry is due."""
    with db.engine.begin() as conn:
        conn.execute(
            update(BATCHES)
            .where(BATCHES.c.task_id == task_id, BATCHES.c.batch_index == batch_index,
                   BATCHES.c.status.in_(ACTIVE_BATCH_STATUSES))
            .values(status="pending", lease_owner=None, lease_expires_at=None, error=error[:2000],
                    dispatched_at=func.now() + func.make_interval(0, 0, 0, 0, 0, 0, float(due_in)))
        )


def fail_batch(task_id: int, batch_index: int, error: str) -> None:
    """Mark the batch failed (it exhausted its retries or hit a permanent error); its results stand."""
    with db.engine.begin() as conn:
        conn.execute(
            update(BATCHES)
            .where(BATCHES.c.task_id == task_id, BATCHES.c.batch_index == batch_index,
                   BATCHES.c.status.in_(ACTIVE_BATCH_STATUSES))
            .values(status="failed", lease_owner=None, lease_expires_at=None, completed_at=func.now(),
                    error=error[:2000])
        )
    logger.warning("batch %s/%s failed: %s", task_id, batch_index, error)


# --------------------------------------------------------------------------------------------- finalize


def recompute_counters(conn: Connection, task_id: int) -> dict[str, Any]:
    """The task's counters and token / cost totals, from its result rows."""
    row = conn.execute(
        select(
            func.count(),
            func.count().filter(RESULTS.c.status == "success"),
            func.count().filter(RESULTS.c.status == "failed"),
            func.count().filter(RESULTS.c.has_conflict.is_(True)),
            func.coalesce(func.sum(RESULTS.c.prompt_tokens), 0),
            func.coalesce(func.sum(RESULTS.c.completion_tokens), 0),
            func.coalesce(func.sum(RESULTS.c.cost_estimate), 0),
        ).where(RESULTS.c.task_id == task_id)
    ).one()
    return {"processed_items": row[0], "success_items": row[1], "failed_items": row[2], "conflict_items": row[3],
            "prompt_tokens": row[4], "completion_tokens": row[5], "cost_estimate": row[6]}


def finalize_task(task_id: int) -> str | None:
    """Set the task's final status from its rows, if every batch is finished. Idempotent; returns the status."""
    with db.engine.begin() as conn:
        task = conn.execute(
            select(TASKS.c.status, TASKS.c.cancel_requested).where(TASKS.c.id == task_id).with_for_update()
        ).first()
        if task is None:
            return None
        if task.status in FINAL_TASK_STATUSES:
            return task.status
        batches = conn.execute(
            select(BATCHES.c.status, BATCHES.c.batch_index, BATCHES.c.error)
            .where(BATCHES.c.task_id == task_id).order_by(BATCHES.c.batch_index)
        ).all()
        if any(b.status not in TERMINAL_BATCH_STATUSES for b in batches):
            logger.info("task %s: not finalized, batches still active", task_id)
            return None
        counters = recompute_counters(conn, task_id)
        failed = [b for b in batches if b.status == "failed"]
        cancelled = [b for b in batches if b.status == "cancelled"]
        if cancelled:
            status, error = "cancelled", "cancelled on request"
        elif failed:
            status = "failed"
            error = (f"{len(failed)} of {len(batches)} batches failed (first: batch {failed[0].batch_index}: "
                     f"{failed[0].error}); the other batches' results stand and retry re-runs what failed")
        elif counters["failed_items"]:
            status, error = "completed_with_errors", f"{counters['failed_items']} items failed; retry re-screens them"
        else:
            status, error = "completed", None
        conn.execute(update(TASKS).where(TASKS.c.id == task_id).values(
            status=status, error=error, completed_at=func.now(), updated_at=func.now(),
            started_at=func.coalesce(TASKS.c.started_at, func.now()), **counters))
    logger.info("task %s finalized: %s", task_id, status)
    return status


# --------------------------------------------------------------------------------------------- cancel / retry


def cancel_task(session: Session, task: ScreeningTask) -> ScreeningTask:
    """Ask a run to stop: running batches stop at their next checkpoint; batches not started are cancelled."""
    if task.status in FINAL_TASK_STATUSES:
        raise TaskAlreadyFinished(f"Task {task.id} is already {task.status}.")
    task_id = task.id
    with db.engine.begin() as conn:
        conn.execute(
            update(BATCHES)
            .where(BATCHES.c.task_id == task_id, BATCHES.c.status.in_(ACTIVE_BATCH_STATUSES), lease_is_free())
            .values(status="cancelled", lease_owner=None, lease_expires_at=None, completed_at=func.now(),
                    error="cancelled before it ran")
        )
        conn.execute(update(TASKS).where(TASKS.c.id == task_id)
                     .values(cancel_requested=True, updated_at=func.now()))
    finalize_task(task_id)
    session.expire_all()
    return session.get(ScreeningTask, task_id)  # type: ignore[return-value]


def retry_task(session: Session, task: ScreeningTask) -> ScreeningTask:
    """Re-queue a finished task's failed items and its failed / cancelled batches as a new attempt."""
    task_id = task.id
    with db.engine.begin() as conn:
        current = conn.execute(select(TASKS.c.status).where(TASKS.c.id == task_id).with_for_update()).scalar_one()
        if current not in FINAL_TASK_STATUSES:
            raise TaskNotFinished(f"Task {task_id} is {current}; retry works on a finished task.")
        failed_item_batches = set(conn.scalars(
            select(RESULTS.c.batch_index).where(RESULTS.c.task_id == task_id, RESULTS.c.status == "failed")
            .distinct()))
        rerun = set(conn.scalars(select(BATCHES.c.batch_index).where(
            BATCHES.c.task_id == task_id, BATCHES.c.status.in_(("failed", "cancelled", "pending", "running")))))
        rerun |= failed_item_batches
        if not rerun:
            raise NothingToRetry(f"Task {task_id} has no failed items or unfinished batches to retry.")
        conn.execute(RESULTS.delete().where(RESULTS.c.task_id == task_id, RESULTS.c.status == "failed"))
        for index in sorted(rerun):
            conn.execute(
                update(BATCHES).where(BATCHES.c.task_id == task_id, BATCHES.c.batch_index == index)
                .values(status="pending", cursor=0, lease_owner=None, lease_expires_at=None, error=None,
                        completed_at=None, celery_task_id=str(uuid.uuid4()), dispatched_at=func.now())
            )
        counters = recompute_counters(conn, task_id)
        conn.execute(update(TASKS).where(TASKS.c.id == task_id).values(
            status="running", attempt=TASKS.c.attempt + 1, cancel_requested=False, completed_at=None,
            error=None, updated_at=func.now(), **counters))
    logger.info("task %s: retry re-queues batches %s", task_id, sorted(rerun))
    dispatch_chord(session, task_id, sorted(rerun))
    session.expire_all()
    return session.get(ScreeningTask, task_id)  # type: ignore[return-value]


# --------------------------------------------------------------------------------------------- sweeper


@dataclass
class SweepReport:
    """What one sweep did."""

    resent: list[tuple[int, int]] = field(default_factory=list)
    cancelled: int = 0
    finalized: list[int] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """JSON-able summary (the Celery result of the sweep)."""
        return {"resent": [list(x) for x in self.resent], "cancelled": self.cancelled, "finalized": self.finalized}


def sweep(queue_size: Callable[[], int | None] | None = None) -> SweepReport:
    """The safety net, run by beat: re-send lost batches with the same celery id; finalize finished tasks.

    A batch is re-sent when its lease expired (its worker died or lost the database for longer than the TTL),
    or when it was never claimed although it is overdue and either a batch sent after it has been claimed a
    while ago (the queue is FIFO, so its message was fetched by a worker that died) or the broker queue is
    empty. The sweeper never takes a lease itself: a re-sent message must claim like any other delivery.
    """
    settings = EngineSettings.from_config()
    report = SweepReport()
    active_task = and_(TASKS.c.id == BATCHES.c.task_id, TASKS.c.status.notin_(FINAL_TASK_STATUSES))
    with db.engine.begin() as conn:
        # Cancelled tasks: batches nobody holds are cancelled.
        report.cancelled = conn.execute(
            update(BATCHES)
            .where(active_task, TASKS.c.cancel_requested.is_(True),
                   BATCHES.c.status.in_(ACTIVE_BATCH_STATUSES), lease_is_free())
            .values(status="cancelled", lease_owner=None, lease_expires_at=None, completed_at=func.now(),
                    error="cancelled")
        ).rowcount or 0
        # Expired leases: the holder is gone; hand the batch to a new delivery.
        expired = conn.execute(
            update(BATCHES)
            .where(active_task, TASKS.c.cancel_requested.is_(False),
                   BATCHES.c.status.in_(ACTIVE_BATCH_STATUSES), BATCHES.c.lease_owner.is_not(None),
                   BATCHES.c.lease_expires_at < func.now())
            .values(status="pending", lease_owner=None, lease_expires_at=None, dispatched_at=func.now())
            .returning(BATCHES.c.task_id, BATCHES.c.batch_index, BATCHES.c.celery_task_id)
        ).all()
    overdue = _overdue_unclaimed(settings, queue_size)
    to_send = [(r.task_id, r.batch_index, r.celery_task_id) for r in expired] + overdue
    celery = current_app.extensions["celery"]
    for task_id, batch_index, celery_id in to_send:
        logger.warning("sweeper: re-sending batch %s/%s as %s", task_id, batch_index, celery_id)
        celery.send_task(task_names.SCREEN_BATCH, args=[task_id, batch_index], task_id=celery_id)
        report.resent.append((task_id, batch_index))
    # Tasks whose batches are all finished but which are not final (the chord's own messages may be lost).
    with db.engine.connect() as conn:
        unfinished = aliased(ScreeningBatch)
        ready = list(conn.scalars(
            select(TASKS.c.id).where(
                TASKS.c.status.notin_(FINAL_TASK_STATUSES),
                exists().where(BATCHES.c.task_id == TASKS.c.id),
                ~exists().where(unfinished.task_id == TASKS.c.id,
                                unfinished.status.notin_(TERMINAL_BATCH_STATUSES)),
            )
        ))
    for task_id in ready:
        if finalize_task(task_id):
            report.finalized.append(task_id)
            settle_chord_results(task_id)
    if report.resent or report.finalized or report.cancelled:
        logger.info("sweep: %s", report.as_dict())
    return report


def settle_chord_results(task_id: int) -> None:
    """Store a result for every finished batch whose Celery id has none (its message was lost or cancelled).

    A chord's ``chord_unlock`` polls its header ids until all are ready; without this it would poll forever for a
    batch the sweeper settled. Its ``finalize_task`` then finds the task final and does nothing.
    """
    from celery import states

    celery = current_app.extensions["celery"]
    with db.engine.connect() as conn:
        rows = conn.execute(select(BATCHES.c.celery_task_id, BATCHES.c.status, BATCHES.c.batch_index)
                            .where(BATCHES.c.task_id == task_id)).all()
    for row in rows:
        if not row.celery_task_id:
            continue
        try:
            if celery.backend.get_state(row.celery_task_id) not in states.READY_STATES:
                celery.backend.mark_as_done(row.celery_task_id, {
                    "status": row.status, "task_id": task_id, "batch_index": row.batch_index, "settled": True})
        except Exception:  # noqa: BLE001 - only tidies Celery's bookkeeping; the task is final already
            logger.warning("could not settle the chord result of batch %s/%s", task_id, row.batch_index,
                           exc_info=True)


def _overdue_unclaimed(settings: EngineSettings, queue_size: Callable[[], int | None] | None
                       ) -> list[tuple[int, int, str]]:
    """Pending batches whose message is evidently lost; their dispatch clock is restarted."""
    grace = func.make_interval(0, 0, 0, 0, 0, 0, float(settings.dispatch_grace))
    later = aliased(ScreeningBatch)
    base = and_(TASKS.c.id == BATCHES.c.task_id, TASKS.c.status.notin_(FINAL_TASK_STATUSES),
                TASKS.c.cancel_requested.is_(False), BATCHES.c.status == "pending",
                BATCHES.c.lease_owner.is_(None), BATCHES.c.dispatched_at < func.now() - grace)
    sent_after = or_(later.dispatched_at > BATCHES.c.dispatched_at,
                     and_(later.dispatched_at == BATCHES.c.dispatched_at, later.task_id == BATCHES.c.task_id,
                          later.batch_index > BATCHES.c.batch_index))
    overtaken = exists().where(sent_after, later.claimed_at > BATCHES.c.dispatched_at,
                               later.claimed_at < func.now() - grace, later.id != BATCHES.c.id)
    with db.engine.begin() as conn:
        candidates = conn.execute(
            select(BATCHES.c.id, BATCHES.c.task_id, BATCHES.c.batch_index, BATCHES.c.celery_task_id,
                   overtaken.label("overtaken")).where(base).with_for_update(of=BATCHES, skip_locked=True)
        ).all()
        if not candidates:
            return []
        chosen = [c for c in candidates if c.overtaken]
        if len(chosen) < len(candidates):
            size = (queue_size or broker_queue_size)()
            if size == 0:
                chosen = list(candidates)
        if not chosen:
            return []
        conn.execute(update(BATCHES).where(BATCHES.c.id.in_([c.id for c in chosen]))
                     .values(dispatched_at=func.now()))
    return [(c.task_id, c.batch_index, c.celery_task_id) for c in chosen]


def broker_queue_size() -> int | None:
    """Messages waiting in the screening queue (None when the broker cannot say)."""
    celery = current_app.extensions["celery"]
    queue = celery.conf.task_default_queue or "celery"
    try:
        with celery.connection_for_read() as connection:
            return int(connection.default_channel.queue_declare(queue=queue, passive=True).message_count)
    except Exception as exc:  # noqa: BLE001 - an unknown size only delays the rescue of a lost message
        logger.info("sweeper: broker queue size unknown (%s)", type(exc).__name__)
        return None


# --------------------------------------------------------------------------------------------- helpers


def batch_status_counts(session: Session, task_id: int) -> dict[str, int]:
    """Number of batches per status."""
    return dict(session.execute(
        select(ScreeningBatch.status, func.count()).where(ScreeningBatch.task_id == task_id)
        .group_by(ScreeningBatch.status)).all())


def throughput(session: Session, task: ScreeningTask, window_seconds: float = 600.0) -> float | None:
    """Items per second over the last ``window_seconds`` of this run (None before any item finished)."""
    if task.started_at is None:
        return None
    now = datetime.now(UTC)
    since = max(task.started_at, now - timedelta(seconds=window_seconds))
    elapsed = (now - since).total_seconds()
    if elapsed <= 0:
        return None
    recent = session.scalar(select(func.count()).select_from(ScreeningResult).where(
        ScreeningResult.task_id == task.id, ScreeningResult.created_at >= since)) or 0
    return recent / elapsed if recent else None

