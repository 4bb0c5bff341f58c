"""The one exception an import raises for input it cannot take, carrying the HTTP status and the field at fault."""

from __future__ import annotations


class ImportRejected(Exception):
    """A file or record list that cannot be imported; nothing was written.

    ``status`` is the HTTP status the API answers with (413 too large, 415 not a supported format,
    422 malformed or over a limit); ``field`` names the request field at fault (``file`` or ``records``).
    """

    def __init__(self, status: int, message: str, field: str = "file") -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field

    def __str__(self) -> str:
        return self.message
