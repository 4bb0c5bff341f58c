"""Importing bibliographic records into a project: dedup within the file and against the project, skip reasons
for records without a title, and one transaction per import (all of it or none of it)."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from app.importers import ImportRejected, parse_file
from app.importers.limits import DEFAULT_MAX_LINE_CHARS
from app.importers.normalise import dedup_key, make_record, normalise_label, parse_year
from app.models import Literature, Project
from app.models.base import utcnow

logger = logging.getLogger(__name__)

INSERT_CHUNK = 1000
IMPORT_LOCK_NAMESPACE = 0x4C49  # pg_advisory_xact_lock(namespace, project id) for imports
LITERATURE = Literature.__table__


@dataclass
class ImportSummary:
    """What an import did: rows written, duplicates not written, skipped records with reasons."""

    imported: int
    duplicates: int
    skipped: list[dict[str, Any]]
    format: str
    encoding: str | None = None
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The summary as the API answers it."""
        return asdict(self)


def check_record_count(count: int, max_records: int, source: str = "file") -> None:
    """ImportRejected (422) when an import holds more than ``max_records`` records."""
    if count > max_records:
        raise ImportRejected(
            422,
            f"The import holds {count} records; the limit is {max_records} per import (MAX_IMPORT_RECORDS). "
            "Split it into smaller imports.",
            field=source,
        )


def check_size(size: int, max_bytes: int, what: str, field: str = "file") -> None:
    """ImportRejected (413) when an upload is larger than ``max_bytes``."""
    if size > max_bytes:
        raise ImportRejected(
            413, f"{what} is larger than the import limit of {max_bytes} bytes (MAX_IMPORT_BYTES).", field=field
        )


def import_file(
    session: Session, project: Project, filename: str, data: bytes, *, max_bytes: int, max_records: int,
    max_line_chars: int = DEFAULT_MAX_LINE_CHARS,
) -> ImportSummary:
    """Parse an export file and import its records (ImportRejected for anything it cannot take)."""
    check_size(len(data), max_bytes, f"'{filename}'")
    parsed = parse_file(filename, data, max_line_chars)
    check_record_count(parsed.total, max_records, "file")
    summary = import_records(session, project, parsed.records, parsed.format, skipped=parsed.skipped)
    summary.encoding = parsed.encoding
    summary.warnings = list(parsed.warnings)
    return summary


def _normalised(record: dict[str, Any], index: int) -> dict[str, Any]:
    """Normalise a record given as JSON (parsers' records pass through unchanged in meaning)."""
    label, _ = normalise_label(record.get("label"))
    authors = record.get("authors") or []
    keywords = record.get("keywords") or []
    return make_record(
        index,
        title=record.get("title"),
        abstract=record.get("abstract"),
        authors=[authors] if isinstance(authors, str) else authors,
        year=parse_year(record.get("year")),
        journal=record.get("journal"),
        doi=record.get("doi"),
        pmid=record.get("pmid"),
        keywords=[keywords] if isinstance(keywords, str) else keywords,
        source_id=record.get("source_id"),
        label=label,
    )


def _chunks(rows: Sequence[dict[str, Any]], size: int) -> Iterator[Sequence[dict[str, Any]]]:
    for start in range(0, len(rows), size):
        yield rows[start:start + size]


def import_records(
    session: Session,
    project: Project,
    records: Sequence[dict[str, Any]],
    source_format: str = "json",
    *,
    skipped: Sequence[dict[str, Any]] = (),
) -> ImportSummary:
    """Insert ``records`` into ``project`` in one transaction, skipping duplicates and records without a title.

    A record's position for skip reasons is its ``index`` key (parsers set the file position) or else its
    position in ``records``. Within the file the first of a set of duplicates is kept (an ``include`` label or
    an abstract of a later copy is carried over); against the project, existing rows win (ON CONFLICT DO
    NOTHING on (project_id, dedup_key)). Commits on success, rolls back and re-raises on any failure."""
    skip_list = list(skipped)
    rows_by_key: dict[str, dict[str, Any]] = {}
    duplicates_in_file = 0
    now = utcnow()
    for position, raw in enumerate(records):
        record = _normalised(raw, raw.get("index", position))
        if not record["title"]:
            skip_list.append({"index": record["index"], "reason": "no title"})
            continue
        key = dedup_key(record["doi"], record["pmid"], record["title"], record["year"])
        kept = rows_by_key.get(key)
        if kept is not None:
            duplicates_in_file += 1
            if record["label"] == "include":
                kept["label"] = "include"
            if not kept["abstract"] and record["abstract"]:
                kept["abstract"] = record["abstract"]
            continue
        rows_by_key[key] = {
            "project_id": project.id,
            "title": record["title"],
            "abstract": record["abstract"],
            "authors": record["authors"],
            "year": record["year"],
            "journal": record["journal"],
            "doi": record["doi"],
            "pmid": record["pmid"],
            "keywords": record["keywords"],
            "source_format": source_format,
            "source_id": record["source_id"],
            "label": record["label"],
            "dedup_key": key,
            "created_at": now,
        }
    rows = list(rows_by_key.values())
    statement = (
        insert(LITERATURE)
        .on_conflict_do_nothing(index_elements=[LITERATURE.c.project_id, LITERATURE.c.dedup_key])
        .returning(LITERATURE.c.id)
    )
    imported = 0
    try:
        # Imports into one project take turns: concurrent inserts of overlapping keys in different orders
        # could otherwise deadlock on the unique index.
        session.execute(select(func.pg_advisory_xact_lock(IMPORT_LOCK_NAMESPACE, project.id)))
        for chunk in _chunks(rows, INSERT_CHUNK):
            imported += len(session.execute(statement, list(chunk)).all())
        session.commit()
    except BaseException:
        session.rollback()
        raise
    summary = ImportSummary(
        imported=imported,
        duplicates=duplicates_in_file + (len(rows) - imported),
        skipped=sorted(skip_list, key=lambda item: item["index"]),
        format=source_format,
    )
    logger.info(
        "project %d: imported %d %s records, %d duplicates, %d skipped",
        project.id, summary.imported, source_format, summary.duplicates, len(summary.skipped),
    )
    return summary


def list_literature(session: Session, project: Project, offset: int, limit: int) -> tuple[list[Literature], int]:
    """A page of a project's records in import order, and the total count."""
    total = session.scalar(select(func.count()).where(Literature.project_id == project.id)) or 0
    items = list(
        session.scalars(
            select(Literature).where(Literature.project_id == project.id)
            .order_by(Literature.id).offset(offset).limit(limit)
        )
    )
    return items, total

