"""Statuses of tasks, batches and results: one set of enums shared by the models (CHECK constraints), the API
schemas, the terminal client and the tests. ``StrEnum`` members compare equal to their string values."""

from __future__ import annotations

from enum import StrEnum


class TaskStatus(StrEnum):
    """``screening_tasks.status``: pending → running → one of the final statuses (``paused`` waits for a resume)."""

    PENDING = "pending"
    RUNNING = "running"
    PAUSED = "paused"
    COMPLETED = "completed"
    COMPLETED_WITH_ERRORS = "completed_with_errors"
    FAILED = "failed"
    CANCELLED = "cancelled"


class PausedReason(StrEnum):
    """``screening_tasks.paused_reason``: why a ``paused`` task waits for a resume."""

    BUDGET = "budget"


class BatchStatus(StrEnum):
    """``screening_batches.status``."""

    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


class ResultStatus(StrEnum):
    """``screening_results.status``: the item was processed, or it failed (with a reason)."""

    SUCCESS = "success"
    FAILED = "failed"


ACTIVE_TASK_STATUSES = (TaskStatus.PENDING, TaskStatus.RUNNING)
FINAL_TASK_STATUSES = (TaskStatus.COMPLETED, TaskStatus.COMPLETED_WITH_ERRORS, TaskStatus.FAILED,
                       TaskStatus.CANCELLED)
ACTIVE_BATCH_STATUSES = (BatchStatus.PENDING, BatchStatus.RUNNING)
TERMINAL_BATCH_STATUSES = (BatchStatus.DONE, BatchStatus.FAILED, BatchStatus.CANCELLED)


def check_constraint_sql(column: str, enum: type[StrEnum]) -> str:
    """The CHECK expression allowing exactly ``enum``'s values in ``column``."""
    values = ", ".join(f"'{member.value}'" for member in enum)
    return f"{column} IN ({values})"
