"""A run's budget, counted in PostgreSQL across every worker and process.

Before an item's LLM calls the batch *reserves* the item's estimated cost on the task row with one conditional
UPDATE, which succeeds only while ``spent + reserved + estimate <= budget_usd`` and the task is not paused (the
row lock serialises every worker's reservation, so the check holds fleet-wide). After the item the batch
*settles*: the reservation goes, the actual cost (0 for cache hits) is added to ``budget_spent_usd``. A refused
reservation stops the batch at its next checkpoint: the items in flight finish and are committed, the lease is
released with the batch back at ``pending`` (its cursor kept) and the task becomes ``paused`` with
``paused_reason = 'budget'``. ``resume_task`` (``runs.py``) raises the budget and re-sends the unfinished batches.

The part of the reservation a batch holds is also kept on the batch row: a new lease holder (after a crash)
releases what the dead holder had reserved, so a kill never leaks budget.
"""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import TYPE_CHECKING

from sqlalchemy import Connection, text

from app.models.statuses import BatchStatus, PausedReason, TaskStatus
from app.services.engine.context import EngineContext
from app.services.engine.errors import LeaseLost

if TYPE_CHECKING:
    from app.services.engine.leases import ClaimedBatch

logger = logging.getLogger(__name__)

RESERVE_SQL = text("""
WITH lease AS (
    SELECT id FROM screening_batches WHERE id = :batch_id AND lease_owner = :owner AND status = 'running'
), task AS (
    UPDATE screening_tasks SET budget_reserved_usd = budget_reserved_usd + :amount
    WHERE id = :task_id AND EXISTS (SELECT 1 FROM lease) AND status <> 'paused'
      AND (budget_usd IS NULL OR budget_spent_usd + budget_reserved_usd + :amount <= budget_usd)
    RETURNING id
), batch AS (
    UPDATE screening_batches SET budget_reserved_usd = budget_reserved_usd + :amount
    WHERE id = :batch_id AND EXISTS (SELECT 1 FROM task)
    RETURNING id
)
SELECT (SELECT count(*) FROM lease) AS owned, (SELECT count(*) FROM batch) AS reserved
""")

# The batch's share is released only while this delivery holds the lease: a new holder released it already.
SETTLE_SQL = text("""
WITH batch AS (
    UPDATE screening_batches SET budget_reserved_usd = GREATEST(0, budget_reserved_usd - :reserved)
    WHERE id = :batch_id AND lease_owner = :owner
    RETURNING id
)
UPDATE screening_tasks SET
    budget_reserved_usd = GREATEST(0, budget_reserved_usd
                                      - CASE WHEN EXISTS (SELECT 1 FROM batch) THEN :reserved ELSE 0 END),
    budget_spent_usd = budget_spent_usd + :spent
WHERE id = :task_id
""")

RELEASE_ON_CLAIM_SQL = text("""
WITH previous AS (
    SELECT budget_reserved_usd AS amount FROM screening_batches WHERE id = :batch_id AND budget_reserved_usd > 0
), batch AS (
    UPDATE screening_batches SET budget_reserved_usd = 0 WHERE id = :batch_id AND budget_reserved_usd > 0
)
UPDATE screening_tasks t SET budget_reserved_usd = GREATEST(0, t.budget_reserved_usd - p.amount)
FROM previous p WHERE t.id = :task_id
""")

PAUSE_SQL = text("""
WITH released AS (
    UPDATE screening_batches SET status = :pending, lease_owner = NULL, lease_expires_at = NULL,
                                 dispatched_at = now(), error = 'paused: budget reached'
    WHERE id = :batch_id AND lease_owner = :owner AND status = 'running'
    RETURNING task_id
)
UPDATE screening_tasks SET status = :paused, paused_reason = :reason, updated_at = now()
WHERE id IN (SELECT task_id FROM released) AND status IN ('pending', 'running') AND NOT cancel_requested
RETURNING id
""")


def _amount(value: float) -> Decimal:
    return Decimal(str(round(max(0.0, float(value)), 6)))


class BudgetGuard:
    """Reserve / settle the cost of one batch's items on its task (only built for tasks with a budget)."""

    def __init__(self, ctx: EngineContext, claim: ClaimedBatch) -> None:
        self.ctx = ctx
        self.claim = claim

    def _params(self) -> dict[str, object]:
        return {"batch_id": self.claim.batch_id, "owner": self.claim.owner, "task_id": self.claim.task_id}

    def reserve(self, estimate: float) -> bool:
        """Reserve ``estimate`` USD for the next item; False when it would pass the budget (or the task is paused).

        Raises LeaseLost when this delivery no longer holds the batch."""
        def run() -> tuple[int, int]:
            with self.ctx.engine.begin() as conn:
                row = conn.execute(RESERVE_SQL, {**self._params(), "amount": _amount(estimate)}).one()
                return int(row.owned), int(row.reserved)

        owned, reserved = self.ctx.waiting(f"budget reservation of task {self.claim.task_id}", run)
        if not owned:
            raise LeaseLost(f"batch {self.claim.task_id}/{self.claim.batch_index} is no longer leased by "
                            f"{self.claim.owner}")
        return bool(reserved)

    def settle(self, reserved: float, spent: float) -> None:
        """Drop an item's reservation and count what its calls actually cost."""
        def run() -> None:
            with self.ctx.engine.begin() as conn:
                conn.execute(SETTLE_SQL, {**self._params(), "reserved": _amount(reserved),
                                          "spent": _amount(spent)})

        self.ctx.waiting(f"budget settlement of task {self.claim.task_id}", run)

    def pause(self) -> bool:
        """Release the batch (pending, cursor kept) and pause the task for its budget; whether this paused it."""
        def run() -> bool:
            with self.ctx.engine.begin() as conn:
                paused = conn.execute(PAUSE_SQL, {**self._params(), "pending": str(BatchStatus.PENDING),
                                                  "paused": str(TaskStatus.PAUSED),
                                                  "reason": str(PausedReason.BUDGET)}).first()
                return paused is not None

        paused = self.ctx.waiting(f"pause of task {self.claim.task_id}", run)
        if paused:
            logger.info("task %s paused: its budget would be passed by the next item (batch %s stopped)",
                        self.claim.task_id, self.claim.batch_index)
        return paused


def release_previous_reservation(conn: Connection, task_id: int, batch_id: int) -> None:
    """On a new claim: return what an earlier holder of the batch had reserved (it died mid-item) to the task."""
    conn.execute(RELEASE_ON_CLAIM_SQL, {"task_id": task_id, "batch_id": batch_id})
