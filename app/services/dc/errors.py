"""The domain errors of the dc services; the API maps each to its HTTP status in one place."""

from __future__ import annotations


class DatasetRejected(Exception):
    """An upload or request that cannot be taken; nothing was written. ``status`` is the HTTP status
    (413 too large, 415 not CSV/XLSX, 422 unreadable or over a limit) and ``field`` the request field at fault.
    Messages never quote cell values (they may be patient text)."""

    def __init__(self, status: int, message: str, field: str = "file") -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field

    def __str__(self) -> str:
        return self.message
