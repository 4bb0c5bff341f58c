"""Datasets: upload (read, health-check, store rows untouched, all in one transaction), look up, delete.

A dataset belongs to the user who uploaded it; anyone else gets ``DatasetNotFound`` (the API's 404). The health
report is stored with the dataset and cached for 24 h under ``dc:health:<sha256 of the file>`` (``:<sheet>``
appended when a sheet other than the first visible one was chosen). Deleting a dataset deletes its rows, its
extraction tasks with their results (foreign keys, ON DELETE CASCADE) and its cache entries (health and
``dc:extraction:<dataset id>:``).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from typing import Any

from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session

from app.cache import Cache
from app.config import Settings
from app.models import DcDataset, DcRecord, ScreeningTask
from app.services.dc.errors import DatasetRejected
from app.services.dc.health import build_table, health_report
from app.services.dc.reading import ReadingLimits, read_table

logger = logging.getLogger(__name__)

DC_TASK_TYPE = "dc_extraction"
HEALTH_PREFIX = "dc:health:"
EXTRACTION_PREFIX = "dc:extraction:"
HEALTH_TTL_SECONDS = 24 * 3600
INSERT_CHUNK = 2000


class DatasetNotFound(LookupError):
    """No such dataset for this user."""


def health_key(sha256: str, sheet: str | None, default_sheet: bool) -> str:
    """``dc:health:<sha256>`` (plus ``:<sheet>`` for a non-default sheet)."""
    return HEALTH_PREFIX + sha256 + ("" if default_sheet or not sheet else f":{sheet}")


def extraction_prefix(dataset_id: int) -> str:
    """The cache prefix of a dataset's extraction answers."""
    return f"{EXTRACTION_PREFIX}{dataset_id}:"


def create_dataset(session: Session, owner_id: int, filename: str, data: bytes, sheet: str | None,
                   config: Mapping[str, Any] | Settings | None, cache: Cache | None) -> DcDataset:
    """Read ``data``, check its health and store it with its rows (flushed; the caller commits)."""
    max_bytes = Settings.of(config).imports.max_bytes
    if len(data) > max_bytes:
        raise DatasetRejected(413, f"'{filename}' is larger than the upload limit of {max_bytes} bytes "
                                   "(MAX_IMPORT_BYTES).")
    raw = read_table(data, filename, sheet, ReadingLimits.from_config(config))
    table = build_table(raw)
    raw.rows = []  # the table holds the rows now: free the raw lists before the insert
    if not table.rows:
        raise DatasetRejected(422, f"'{filename}' has no data rows (only a header, or nothing at all).")
    sha256 = hashlib.sha256(data).hexdigest()
    default_sheet = sheet is None
    key = health_key(sha256, raw.sheet, default_sheet)
    report = cache.get(key) if cache is not None else None
    if not isinstance(report, dict):
        report = health_report(raw, table, sha256)
        if cache is not None:
            cache.set(key, report, HEALTH_TTL_SECONDS)
    dataset = DcDataset(owner_id=owner_id, filename=filename[:255], file_format=raw.file_format, sheet=raw.sheet,
                        sha256=sha256, size_bytes=len(data), columns=table.columns, row_count=len(table.rows),
                        health=report)
    session.add(dataset)
    session.flush()
    for start in range(0, len(table.rows), INSERT_CHUNK):
        session.execute(insert(DcRecord), [{"dataset_id": dataset.id, "row_index": start + i, "data": row}
                                           for i, row in enumerate(table.rows[start:start + INSERT_CHUNK])])
    logger.info("dataset %s stored: %d rows, %d columns, %d issues", dataset.id, len(table.rows),
                len(table.columns), len(report.get("issues", [])))
    return dataset


def get_dataset(session: Session, owner_id: int, dataset_id: int) -> DcDataset:
    """The owner's dataset; DatasetNotFound otherwise (also for another user's)."""
    dataset = session.get(DcDataset, dataset_id)
    if dataset is None or dataset.owner_id != owner_id:
        raise DatasetNotFound(dataset_id)
    return dataset


def list_datasets(session: Session, owner_id: int, offset: int, limit: int) -> tuple[list[DcDataset], int]:
    """A page of the owner's datasets, newest first, and the total."""
    query = select(DcDataset).where(DcDataset.owner_id == owner_id)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    items = list(session.scalars(query.order_by(DcDataset.id.desc()).offset(offset).limit(limit)))
    return items, total


def dataset_health(dataset: DcDataset, cache: Cache | None) -> dict[str, Any]:
    """The health report: from the cache (24 h), else the stored copy (cached again)."""
    key = health_key(dataset.sha256, dataset.sheet, default_sheet=_is_default_sheet(dataset))
    if cache is not None:
        cached = cache.get(key)
        if isinstance(cached, dict):
            return cached
        cache.set(key, dataset.health, HEALTH_TTL_SECONDS)
    return dataset.health


def _is_default_sheet(dataset: DcDataset) -> bool:
    sheets = (dataset.health or {}).get("sheets") or []
    visible = [s["name"] for s in sheets if s.get("visible")]
    return not visible or dataset.sheet == visible[0]


def delete_dataset(session: Session, dataset: DcDataset, cache: Cache | None) -> None:
    """Delete the dataset, its rows, its extraction tasks and results (cascade) and its cache entries."""
    if cache is not None:
        cache.delete(health_key(dataset.sha256, dataset.sheet, _is_default_sheet(dataset)))
        cache.delete_prefix(extraction_prefix(dataset.id))
    # extraction tasks name their dataset in params; their batches and results go with them (ON DELETE CASCADE)
    session.execute(delete(ScreeningTask).where(ScreeningTask.task_type == DC_TASK_TYPE,
                                                ScreeningTask.params["dataset_id"].as_integer() == dataset.id))
    session.delete(dataset)
    session.flush()


def load_records(session: Session, dataset_id: int) -> list[DcRecord]:
    """Every row of the dataset, in file order."""
    return list(session.scalars(select(DcRecord).where(DcRecord.dataset_id == dataset_id)
                                .order_by(DcRecord.row_index)))
