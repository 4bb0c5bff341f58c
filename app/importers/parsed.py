"""The result of parsing an export file: normalised records, the format, per-record skips and notes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class ParsedFile:
    """Records in file order (each with its 0-based ``index`` in the file), plus what was skipped and why."""

    records: list[dict[str, Any]]
    format: str
    skipped: list[dict[str, Any]] = field(default_factory=list)
    encoding: str = "utf-8"
    warnings: list[str] = field(default_factory=list)

    def skip(self, index: int, reason: str) -> None:
        """Record that the entry at ``index`` was not imported, and why."""
        self.skipped.append({"index": index, "reason": reason})

    @property
    def total(self) -> int:
        """How many entries the file held (read or skipped)."""
        return len(self.records) + len(self.skipped)
