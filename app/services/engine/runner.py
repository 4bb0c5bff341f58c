"""Running one claimed batch: its kind's processor on a few threads, checkpoints as it goes, a lease heartbeat.

At most ``window`` items are in flight or done-but-uncommitted, so a kill redoes no more than that; a commit
happens as soon as waiting longer would leave a thread idle, or after ``checkpoint_seconds``. The processor's
threads hold no database connection while they wait for an LLM; the checkpoint and the heartbeat take one from
the process's small pool for one statement each.
"""

from __future__ import annotations

import enum
import logging
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select

from app.models import ScreeningResult
from app.models.statuses import BatchStatus
from app.services.engine.budget import BudgetGuard
from app.services.engine.checkpoint import write_checkpoint
from app.services.engine.context import EngineContext
from app.services.engine.errors import LeaseLost
from app.services.engine.leases import TASKS, BatchOutcome, ClaimedBatch, LeaseHeartbeat, claim_batch, new_lease_owner
from app.services.kinds import BatchContext, ItemProcessor, get_kind
from app.services.record_screening import open_llm_cache

logger = logging.getLogger(__name__)

RESULTS = ScreeningResult.__table__


class Stop(enum.Enum):
    """Why a batch stopped taking new items before it ran out of them."""

    CANCEL = "cancel"   # the task was cancelled: finish what is in flight, commit, end as cancelled
    ERROR = "error"     # an item raised (LLM provider down, a bug): commit what is done, then raise
    BUDGET = "budget"   # the next item would pass the task's budget: commit what is done, release, pause


@dataclass
class InFlight:
    """An item being processed: its position in the batch, its id and when it started."""

    position: int
    item_id: int
    started: float
    reserved: float = 0.0   # USD reserved on the task's budget for this item


def run_batch(ctx: EngineContext, task_id: int, batch_index: int, owner: str | None = None) -> BatchOutcome:
    """Claim the batch and process it from its cursor, checkpointing as it goes.

    Returns the outcome; raises LeaseLost when another delivery took the batch, LLMUnavailable (the caller's
    Celery retry) or DatabaseUnavailable when the database stayed away longer than the wait budget.
    """
    claim = claim_batch(ctx, task_id, batch_index, owner or new_lease_owner())
    if isinstance(claim, BatchOutcome):
        logger.info("batch %s/%s: not claimed (%s)", task_id, batch_index, claim.status)
        return claim
    return BatchRunner(ctx, claim).run()


class BatchRunner:
    """Processes one claimed batch (see module docstring)."""

    def __init__(self, ctx: EngineContext, claim: ClaimedBatch) -> None:
        self.ctx = ctx
        self.claim = claim
        self.settings = ctx.settings
        self.outcome = BatchOutcome(BatchStatus.DONE, claim.task_id, claim.batch_index)
        self.done_positions: list[bool] = []
        self.pending: list[tuple[int, int]] = []      # (position, item id), next item last
        self.in_flight: dict[Future, InFlight] = {}
        self.uncommitted: list[tuple[int, dict[str, Any]]] = []
        self.stop: Stop | None = None
        self.failure: BaseException | None = None
        self.last_checkpoint = time.monotonic()
        self.budget: BudgetGuard | None = None
        self.fallback_item_cost = 0.0   # for kinds without an estimate: the dearest item of the task so far

    # -------------------------------------------------------------------------------------------- setup

    def run(self) -> BatchOutcome:
        """Process every item from the cursor; the final checkpoint marks the batch done (or cancelled)."""
        processor = self._open_processor()
        try:
            with LeaseHeartbeat(self.ctx, self.claim.batch_id, self.claim.owner) as heartbeat, \
                    ThreadPoolExecutor(max_workers=processor.concurrency, thread_name_prefix="item") as pool:
                return self._process_all(processor, pool, heartbeat)
        finally:
            processor.close()

    def _open_processor(self) -> ItemProcessor:
        """Load the task and the batch's finished items; open the kind's processor for the rest."""
        claim = self.claim
        with self.ctx.engine.connect() as conn:
            task = conn.execute(select(TASKS.c.task_type, TASKS.c.model_config, TASKS.c.project_id, TASKS.c.params,
                                       TASKS.c.budget_usd)
                                .where(TASKS.c.id == claim.task_id)).one()
            done = set(conn.scalars(select(RESULTS.c.item_id).where(
                RESULTS.c.task_id == claim.task_id, RESULTS.c.item_id.in_(claim.item_ids))))
            if task.budget_usd is not None:
                self.budget = BudgetGuard(self.ctx, claim)
                self.fallback_item_cost = float(conn.scalar(select(func.coalesce(func.max(RESULTS.c.cost_estimate),
                                                                                 0))
                                                            .where(RESULTS.c.task_id == claim.task_id)) or 0)
        self.done_positions = [position < claim.cursor or item_id in done
                               for position, item_id in enumerate(claim.item_ids)]
        self.pending = [(position, item_id) for position, item_id in enumerate(claim.item_ids)
                        if not self.done_positions[position]][::-1]
        kind = get_kind(task.task_type)
        context = BatchContext(
            task_id=claim.task_id, batch_index=claim.batch_index, item_ids=[i for _p, i in reversed(self.pending)],
            project_id=task.project_id, model_config=task.model_config or {}, params=task.params or {},
            config=self.ctx.config, engine=self.ctx.engine, cache=open_llm_cache(self.ctx.config, self.ctx.engine))
        return kind.open_processor(context)

    # -------------------------------------------------------------------------------------------- phases

    def _process_all(self, processor: ItemProcessor, pool: ThreadPoolExecutor,
                     heartbeat: LeaseHeartbeat) -> BatchOutcome:
        """submit → collect → check the lease → checkpoint, until every item is done or the batch stops."""
        window = max(self.settings.checkpoint_every, processor.concurrency)
        while True:
            self._submit(processor, pool, window)
            self._collect()
            if heartbeat.lost.is_set():
                raise LeaseLost(f"batch {self.claim.task_id}/{self.claim.batch_index}")
            if self._drained():
                return self._finish()
            if self._checkpoint_due(window - processor.concurrency):
                self._checkpoint(None)

    def _submit(self, processor: ItemProcessor, pool: ThreadPoolExecutor, window: int) -> None:
        """Start items while a thread is free, the window has room and the batch is not stopping."""
        while (self.stop is None and self.pending and len(self.in_flight) < processor.concurrency
               and len(self.in_flight) + len(self.uncommitted) < window):
            position, item_id = self.pending.pop()
            reserved = 0.0
            if self.budget is not None:
                estimate = processor.estimated_cost(item_id)
                reserved = self.fallback_item_cost if estimate is None else estimate
                if not self.budget.reserve(reserved):
                    logger.info("batch %s/%s: the next item would pass the budget; stopping",
                                self.claim.task_id, self.claim.batch_index)
                    self.pending.append((position, item_id))
                    self.stop = Stop.BUDGET
                    return
            future = pool.submit(processor.process, item_id)
            self.in_flight[future] = InFlight(position, item_id, time.monotonic(), reserved)

    def _collect(self) -> None:
        """Wait (until the next checkpoint is due at most) for items to finish; keep their rows."""
        if not self.in_flight:
            return
        timeout = max(0.05, self.settings.checkpoint_seconds - (time.monotonic() - self.last_checkpoint))
        finished, _ = wait(list(self.in_flight), timeout=timeout, return_when=FIRST_COMPLETED)
        for future in finished:
            item = self.in_flight.pop(future)
            try:
                row = future.result()
            except Exception as exc:  # noqa: BLE001 - LLMUnavailable or a bug: stop, keep what is done
                self._settle(item, 0.0)
                self.failure = self.failure or exc
                self.stop = Stop.ERROR
                continue
            self._settle(item, 0.0 if row is None else float(row.cost_estimate or 0.0))
            if row is None:  # the item was deleted since the task started: nothing to record
                self.done_positions[item.position] = True
                continue
            payload = row.as_dict()
            payload["duration_ms"] = (time.monotonic() - item.started) * 1000.0
            self.uncommitted.append((item.position, payload))

    def _settle(self, item: InFlight, spent: float) -> None:
        """Count the item's actual cost against the budget and drop its reservation (budgeted tasks only)."""
        if self.budget is None:
            return
        self.fallback_item_cost = max(self.fallback_item_cost, spent)
        self.budget.settle(item.reserved, spent)

    def _drained(self) -> bool:
        return not self.in_flight and (self.stop is not None or not self.pending)

    def _checkpoint_due(self, commit_at: int) -> bool:
        if not self.uncommitted:
            return False
        return (len(self.uncommitted) >= max(1, commit_at)
                or time.monotonic() - self.last_checkpoint >= self.settings.checkpoint_seconds)

    def _finish(self) -> BatchOutcome:
        """The last checkpoint: done, or cancelled with items left; after an item error, keep what is done."""
        if self.failure is not None:
            self._checkpoint(None)
            raise self.failure
        if self.stop is Stop.BUDGET and self.budget is not None and self.pending:
            self._checkpoint(None)
            self.budget.pause()
            self.outcome.status = "paused"
            return self.outcome
        status = BatchStatus.CANCELLED if self.stop is Stop.CANCEL and self.pending else BatchStatus.DONE
        self._checkpoint(status)
        self.outcome.status = status
        return self.outcome

    # -------------------------------------------------------------------------------------------- checkpoint

    def _cursor(self) -> int:
        cursor = 0
        while cursor < len(self.done_positions) and self.done_positions[cursor]:
            cursor += 1
        return cursor

    def _checkpoint(self, final_status: BatchStatus | None) -> None:
        """Commit results + cursor + counters + lease in one statement (waiting out a database outage)."""
        for position, _row in self.uncommitted:
            self.done_positions[position] = True
        cursor = self._cursor()
        rows = [row for _position, row in self.uncommitted]
        started = time.perf_counter()
        previous_ms = self.outcome.checkpoint_ms[-1] if self.outcome.checkpoint_ms else None

        def write() -> bool:
            with self.ctx.engine.begin() as conn:
                return write_checkpoint(conn, self.claim, rows, cursor, final_status, self.settings, previous_ms)

        cancel = self.ctx.waiting(f"checkpoint of batch {self.claim.task_id}/{self.claim.batch_index}", write)
        elapsed = (time.perf_counter() - started) * 1000.0
        self.outcome.checkpoint_ms.append(elapsed)
        self.outcome.screened += len(rows)
        self.uncommitted = []
        self.last_checkpoint = time.monotonic()
        logger.debug("batch %s/%s: checkpoint %d rows, cursor %d, %.1f ms", self.claim.task_id,
                     self.claim.batch_index, len(rows), cursor, elapsed)
        if cancel and self.stop is None:
            logger.info("batch %s/%s: cancel requested; stopping", self.claim.task_id, self.claim.batch_index)
            self.stop = Stop.CANCEL
