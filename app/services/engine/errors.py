"""Domain errors of the engine: requests it refuses (the API maps them to 409) and conditions of a delivery."""

from __future__ import annotations


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


class LeaseLost(Exception):
    """This delivery no longer owns the batch's lease (it expired and was taken, or the batch was reset)."""


class DatabaseUnavailable(Exception):
    """The database refused or dropped connections for longer than the engine's wait budget."""
