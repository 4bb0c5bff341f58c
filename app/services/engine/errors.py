"""Domain errors of the engine: requests it refuses (the API maps them to 409) and conditions of a delivery."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError


class ScreeningError(Exception):
    """A request the engine refuses (the API maps it to 409)."""


class TaskAlreadyActive(ScreeningError):
    """A run of this project and kind is still pending or running."""


class TaskNotFinished(ScreeningError):
    """Retry of a task that is still running."""


class NothingToRetry(ScreeningError):
    """Retry of a task without failed items, failed or cancelled batches."""


class TaskAlreadyFinished(ScreeningError):
    """Cancel of a task that already reached a final status."""


class TaskNotPaused(ScreeningError):
    """Resume of a task that is not paused."""


class BudgetTooLow(ValueError):
    """A resume's budget is not above what the run has spent (the API answers 422 naming ``budget_usd``)."""

    field = "budget_usd"


class LeaseLost(Exception):
    """This delivery no longer owns the batch's lease (it expired and was taken, or the batch was reset)."""


class DatabaseUnavailable(Exception):
    """The database refused or dropped connections for longer than the engine's wait budget."""


def raise_if_another_run_is_active(exc: IntegrityError) -> None:
    """TaskAlreadyActive when ``exc`` is the one-active-task index refusing a second active run."""
    from app.models.screening import ONE_ACTIVE_TASK_INDEX

    if ONE_ACTIVE_TASK_INDEX in str(exc.orig):
        raise TaskAlreadyActive("Another run of this project and kind is active; cancel it or wait for it.") \
            from None
