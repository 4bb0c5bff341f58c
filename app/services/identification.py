"""PRISMA 2020 identification counts: records identified per source database and duplicates removed, from the
``import_batches`` rows every import writes and the human merges of possible duplicates.

``identification_counts(session, project)`` is what the PRISMA endpoint reads."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.models import DuplicateDecision, ImportBatch, Literature, Project

logger = logging.getLogger(__name__)

# The key under which records without a known source database are counted.
UNSPECIFIED = "unspecified"


class IdentificationCounts:
    """Per-database tallies of one import: identified, duplicates (removed) and imported."""

    def __init__(self) -> None:
        self.counts: dict[str, dict[str, int]] = {}

    def _bump(self, databases: Iterable[str], name: str) -> None:
        database = next(iter(databases), None) or UNSPECIFIED
        entry = self.counts.setdefault(database, {"identified": 0, "duplicates": 0, "imported": 0})
        entry[name] += 1

    def identified(self, databases: Iterable[str]) -> None:
        """A record of the import was found in (the first of) ``databases``."""
        self._bump(databases, "identified")

    def duplicate(self, databases: Iterable[str]) -> None:
        """A record of the import was removed as a duplicate."""
        self._bump(databases, "duplicates")

    def imported(self, databases: Iterable[str]) -> None:
        """A record of the import was written as a new record."""
        self._bump(databases, "imported")

    def as_dict(self) -> dict[str, dict[str, int]]:
        """The tallies, by database name."""
        return {name: dict(value) for name, value in sorted(self.counts.items())}


def identification_counts(session: Session, project: Project) -> dict[str, Any]:
    """PRISMA identification figures of a project.

    ``databases``: per source database, records identified, duplicates removed at import and records imported;
    ``records_identified`` and ``duplicates_removed`` (automatic at import + merged by a human) in total;
    ``records_after_duplicates_removed``: the project's records now; ``imports``: one entry per import."""
    batches = list(session.scalars(
        select(ImportBatch).where(ImportBatch.project_id == project.id).order_by(ImportBatch.id)
    ))
    databases: dict[str, dict[str, int]] = {}
    for batch in batches:
        for name, value in (batch.by_database or {}).items():
            entry = databases.setdefault(name, {"identified": 0, "duplicates": 0, "imported": 0})
            for key in entry:
                entry[key] += int(value.get(key, 0))
    merged = sum(
        max(len(ids) - 1, 0) for ids in session.scalars(
            select(DuplicateDecision.literature_ids).where(
                DuplicateDecision.project_id == project.id, DuplicateDecision.decision == "merged"
            )
        )
    )
    automatic = sum(batch.duplicates_in_file + batch.duplicates_existing for batch in batches)
    records_now = session.scalar(select(func.count()).where(Literature.project_id == project.id)) or 0
    return {
        "databases": [{"name": name, "records_identified": value["identified"],
                       "duplicates_removed": value["duplicates"], "records_imported": value["imported"]}
                      for name, value in sorted(databases.items())],
        "records_identified": sum(batch.identified for batch in batches),
        "duplicates_removed": automatic + merged,
        "duplicates_removed_automatically": automatic,
        "duplicates_merged_by_reviewers": merged,
        "records_skipped": sum(batch.skipped for batch in batches),
        "records_after_duplicates_removed": records_now,
        "imports": [
            {"id": batch.id, "filename": batch.filename, "format": batch.format, "encoding": batch.encoding,
             "source_label": batch.source_label, "records_identified": batch.identified,
             "records_imported": batch.imported,
             "duplicates_removed": batch.duplicates_in_file + batch.duplicates_existing,
             "skipped": batch.skipped, "by_database": batch.by_database, "warnings": batch.warnings,
             "created_at": batch.created_at.isoformat()}
            for batch in batches
        ],
    }
