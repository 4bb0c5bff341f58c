"""The domain errors of the dc services; the API maps each to its HTTP status in one place."""

from __future__ import annotations

from app.importers.errors import ImportRejected


class DatasetRejected(ImportRejected):
    """An upload or request that cannot be taken; nothing was written. ``status`` is the HTTP status
    (413 too large, 415 not CSV/XLSX, 422 unreadable or over a limit, 409 not possible now) and ``field`` the
    request field at fault. Messages never quote cell values (they may be patient text)."""
