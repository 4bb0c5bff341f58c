"""The engine every task kind runs on: batches, leases, checkpoints, the sweeper and the chord.

Database rows are the truth, Celery messages are hints. A run is a ``screening_tasks`` row with its
``screening_batches`` (the checkpoint rows) and one ``screening_results`` row per item. Every state change is
one conditional SQL statement or one short transaction:

- ``leases``: a delivery *claims* a batch with one UPDATE that succeeds only while the batch is not finished and
  its lease is free or expired; a heartbeat renews it;
- ``runner``: the batch's kind processes items on a few threads; a *checkpoint* (``checkpoint``) writes new
  result rows, the cursor, the counters and the lease renewal in ONE statement, only while the lease is ours;
- ``runs``: start (one transaction, chord sent after commit), cancel, retry, resume (after a budget pause);
- ``budget``: the run's budget, reserved before each item's calls and settled after, on the task row;
- ``recovery``: *finalize* recomputes counters from rows, idempotently; the *sweeper* re-sends lost batches.

The engine is handed an ``EngineContext`` (database engine, settings, config, publisher): it reads no globals.
What differs between kinds lives in ``app/services/kinds/``. Celery's tasks (``tasks/screening.py``) wrap these.
"""

from app.config import EngineSettings
from app.services.engine.checkpoint import write_checkpoint
from app.services.engine.context import EngineContext, engine_context
from app.services.engine.errors import (
    BudgetTooLow,
    DatabaseUnavailable,
    LeaseLost,
    NothingToRetry,
    ScreeningError,
    TaskAlreadyActive,
    TaskAlreadyFinished,
    TaskNotFinished,
    TaskNotPaused,
)
from app.services.engine.leases import BatchOutcome, ClaimedBatch, claim_batch, fail_batch, release_batch
from app.services.engine.publisher import CeleryPublisher, Publisher, TaskMessage, after_commit
from app.services.engine.recovery import SweepReport, finalize_task, sweep
from app.services.engine.runner import run_batch
from app.services.engine.runs import cancel_task, resume_task, retry_task, start_task

__all__ = [
    "BatchOutcome", "BudgetTooLow", "CeleryPublisher", "ClaimedBatch", "DatabaseUnavailable", "EngineContext",
    "EngineSettings", "LeaseLost", "NothingToRetry", "Publisher", "ScreeningError", "SweepReport",
    "TaskAlreadyActive", "TaskAlreadyFinished", "TaskMessage", "TaskNotFinished", "TaskNotPaused", "after_commit",
    "cancel_task", "claim_batch", "engine_context", "fail_batch", "finalize_task", "release_batch", "resume_task",
    "retry_task", "run_batch", "start_task", "sweep", "write_checkpoint",
]
