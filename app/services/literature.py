"""Importing bibliographic records into a project: duplicates merged within the file and against the project
(app/services/deduplication.py), skip reasons for records without a title, per-database identification counts
in ``import_batches`` (app/services/identification.py), and one transaction per import (all of it or none)."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import Text, bindparam, func, select, update
from sqlalchemy.dialects.postgresql import ARRAY, insert
from sqlalchemy.orm import Session

from app.importers import ImportRejected, parse_file
from app.importers.normalise import clean_text, dedup_key, make_record, normalise_label, parse_year
from app.importers.record_types import RECORD_TYPES
from app.models import ImportBatch, Literature, Project
from app.models.base import utcnow
from app.services.deduplication import MERGED_FIELDS, ExistingRecord, group_duplicates, label_conflict, merge_copy
from app.services.identification import IdentificationCounts

logger = logging.getLogger(__name__)

INSERT_CHUNK = 1000
IMPORT_LOCK_NAMESPACE = 0x4C49  # pg_advisory_xact_lock(namespace, project id) for imports
LITERATURE = Literature.__table__
INSERT_STATEMENT = (
    insert(LITERATURE)
    .on_conflict_do_nothing(index_elements=[LITERATURE.c.project_id, LITERATURE.c.dedup_key])
    .returning(LITERATURE.c.id)
)


@dataclass
class ImportSummary:
    """What an import did: rows written, duplicates not written, skipped records with reasons, the detected
    format and encoding, warnings, and the import's id and records identified per source database."""

    imported: int
    duplicates: int
    skipped: list[dict[str, Any]]
    format: str
    encoding: str | None = None
    warnings: list[str] = field(default_factory=list)
    batch_id: int | None = None
    source_databases: dict[str, int] = field(default_factory=dict)

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
    source_label: str | None = None,
) -> ImportSummary:
    """Parse an export file and import its records (ImportRejected for anything it cannot take).

    ``source_label`` (the user's name for the database searched) replaces the detected source database."""
    check_size(len(data), max_bytes, f"'{filename}'")
    parsed = parse_file(filename, data)
    check_record_count(parsed.total, max_records, "file")
    return import_records(
        session, project, parsed.records, parsed.format, skipped=parsed.skipped, filename=filename,
        encoding=parsed.encoding, warnings=parsed.warnings, source_label=source_label,
    )


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
        record_type=record.get("record_type") if record.get("record_type") in RECORD_TYPES else None,
        source_database=record.get("source_database"),
        source_databases=record.get("source_databases") or [],
    )


def _chunks(rows: Sequence[dict[str, Any]], size: int) -> Iterator[Sequence[dict[str, Any]]]:
    for start in range(0, len(rows), size):
        yield rows[start:start + size]


def _existing_records(session: Session, project: Project) -> dict[int, ExistingRecord]:
    """The identifying fields of the project's records, and which of the fields a copy can complete are empty."""
    empty = [getattr(LITERATURE.c, name).is_(None).label(f"no_{name}") for name in MERGED_FIELDS]
    rows = session.execute(
        select(LITERATURE.c.id, LITERATURE.c.doi, LITERATURE.c.pmid, LITERATURE.c.title, LITERATURE.c.year,
               LITERATURE.c.label, LITERATURE.c.source_databases, *empty)
        .where(LITERATURE.c.project_id == project.id)
    )
    existing = {}
    for row in rows:
        record = ExistingRecord(row.id, row.doi, row.pmid, row.title, row.year, row.label,
                                list(row.source_databases or []))
        record.empty_fields = {name for name in MERGED_FIELDS if getattr(row, f"no_{name}")}
        existing[row.id] = record
    return existing


def import_records(
    session: Session,
    project: Project,
    records: Sequence[dict[str, Any]],
    source_format: str = "json",
    *,
    skipped: Sequence[dict[str, Any]] = (),
    filename: str | None = None,
    encoding: str | None = None,
    warnings: Sequence[str] = (),
    source_label: str | None = None,
) -> ImportSummary:
    """Insert ``records`` into ``project`` in one transaction, merging duplicates and skipping records without a
    title, and record the import with its per-database counts in ``import_batches``.

    A record's position for skip reasons is its ``index`` key (parsers set the file position) or else its
    position in ``records``. Copies of one record within the import become one row (the first copy, completed
    from the others); copies of a record already in the project are not inserted, and the oldest matching
    record is completed from them (missing DOI, PMID, abstract …; every source database). Conflicting human
    labels are a warning. Commits on success, rolls back and re-raises on any failure."""
    skip_list = list(skipped)
    summary_warnings = list(warnings)
    label = clean_text(source_label)
    titled: list[dict[str, Any]] = []
    for position, raw in enumerate(records):
        record = _normalised(raw, raw.get("index", position))
        if not record["title"]:
            skip_list.append({"index": record["index"], "reason": "no title"})
            continue
        if label:
            record["source_databases"] = [label]
        titled.append(record)
    counts = IdentificationCounts()
    now = utcnow()
    try:
        # Imports into one project take turns: the duplicate check reads the project's records, and concurrent
        # inserts of overlapping keys in different orders could otherwise deadlock on the unique index.
        session.execute(select(func.pg_advisory_xact_lock(IMPORT_LOCK_NAMESPACE, project.id)))
        existing = _existing_records(session, project)
        rows: list[dict[str, Any]] = []
        updates: dict[int, dict[str, Any]] = {}
        duplicates_in_file = duplicates_existing = 0
        for group in group_duplicates(titled, existing.values()):
            copies = [titled[position] for position in group.new]
            for record in copies:
                counts.identified(record["source_databases"])
            warning = label_conflict(copies, [existing[i] for i in group.existing])
            if warning:
                summary_warnings.append(warning)
            if group.existing:
                duplicates_existing += len(copies)
                oldest = existing[group.existing[0]]
                target = updates.setdefault(oldest.id, {"id": oldest.id, "label": oldest.label,
                                                        "source_databases": list(oldest.source_databases or [])})
                for record in copies:
                    counts.duplicate(record["source_databases"])
                    merge_copy(target, record)
                if len(group.existing) > 1:
                    summary_warnings.append(
                        f"Record #{copies[0]['index']} matches several records already in the project (ids "
                        f"{', '.join(map(str, group.existing))}); they are listed in possible-duplicates."
                    )
                continue
            kept = copies[0]
            for record in copies[1:]:
                duplicates_in_file += 1
                counts.duplicate(record["source_databases"])
                merge_copy(kept, record)
            rows.append(_row(project, kept, source_format, now))
        batch = ImportBatch(project_id=project.id, filename=filename, format=source_format, encoding=encoding,
                            source_label=label, identified=len(titled), skipped=len(skip_list),
                            imported=0, duplicates_in_file=0, duplicates_existing=0, by_database={}, warnings=[],
                            created_at=now)
        session.add(batch)
        session.flush()
        imported = 0
        for chunk in _chunks(rows, INSERT_CHUNK):
            for row in chunk:
                row["import_batch_id"] = batch.id
            inserted = {row_id for (row_id,) in session.execute(INSERT_STATEMENT, list(chunk)).all()}
            imported += len(inserted)
        # Rows the unique (project, dedup_key) index refused cannot happen under the lock, but count them honestly.
        refused = len(rows) - imported
        for row in rows[:imported]:
            counts.imported(row["source_databases"])
        _complete_existing(session, existing, list(updates.values()))
        batch.imported = imported
        batch.duplicates_in_file = duplicates_in_file
        batch.duplicates_existing = duplicates_existing + refused
        batch.by_database = counts.as_dict()
        batch.warnings = summary_warnings
        batch_id = batch.id
        by_database = batch.by_database
        session.commit()
    except BaseException:
        session.rollback()
        raise
    summary = ImportSummary(
        imported=imported,
        duplicates=duplicates_in_file + duplicates_existing + refused,
        skipped=sorted(skip_list, key=lambda item: item["index"]),
        format=source_format,
        encoding=encoding,
        warnings=summary_warnings,
        batch_id=batch_id,
        source_databases={name: value["identified"] for name, value in by_database.items()},
    )
    logger.info(
        "project %d: imported %d %s records, %d duplicates, %d skipped",
        project.id, summary.imported, source_format, summary.duplicates, len(summary.skipped),
    )
    return summary


def _row(project: Project, record: dict[str, Any], source_format: str, now: Any) -> dict[str, Any]:
    return {
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
        "record_type": record["record_type"],
        "source_databases": record["source_databases"],
        "dedup_key": dedup_key(record["doi"], record["pmid"], record["title"], record["year"]),
        "created_at": now,
    }


COMPLETE_EXISTING = (
    update(LITERATURE)
    .where(LITERATURE.c.id == bindparam("record_id"))
    .values(**{name: func.coalesce(getattr(LITERATURE.c, name),
                                   bindparam(f"new_{name}", type_=getattr(LITERATURE.c, name).type))
               for name in MERGED_FIELDS},
            label=bindparam("new_label"), source_databases=bindparam("new_sources", type_=ARRAY(Text)))
)


def _complete_existing(session: Session, existing: dict[int, ExistingRecord], updates: list[dict[str, Any]]) -> None:
    """Fill what records already in the project lack from their new copies; add the copies' databases. Only
    rows that change are written (one executemany)."""
    params = []
    for values in updates:
        record = existing[values["id"]]
        filled = {f"new_{name}": values.get(name) if name in record.empty_fields else None for name in MERGED_FIELDS}
        if not any(v is not None for v in filled.values()) and values["label"] == record.label and \
                values["source_databases"] == record.source_databases:
            continue
        params.append({"record_id": record.id, **filled, "new_label": values["label"],
                       "new_sources": values["source_databases"]})
    if params:
        session.execute(COMPLETE_EXISTING, params)


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

