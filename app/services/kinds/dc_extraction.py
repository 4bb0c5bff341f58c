"""The ``dc_extraction`` kind: structured fields from the free-text rows of an uploaded clinical dataset.

Items are the dataset's rows (``dc_records.id``). Each row's text columns are read by every configured model,
which returns each field as ``{value, evidence}``; values are normalised by type, evidence is verified against
the row's text, and per-field agreement decides what goes to a human (``app/services/dc/extractor.py``).
Parameters (``screening_tasks.params``): ``dataset_id``, ``id_column``, ``text_columns``, ``schema``
(``{fields: [...]}``), ``gold_columns`` (field -> column, optional) and ``columns`` (the dataset's columns, for
the export).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from typing import Any

from marshmallow import ValidationError
from sqlalchemy import and_, select
from sqlalchemy.orm import Session

from app.llm.extraction_prompts import EXTRACTION_PROMPT_VERSION, record_text
from app.llm.models import ModelSpec
from app.llm.pricing import price_table
from app.models import DcDataset, DcRecord, ScreeningResult, ScreeningTask
from app.models.statuses import ResultStatus
from app.services.dc.accuracy import final_value
from app.services.dc.extractor import RecordExtraction, RecordExtractor
from app.services.dc.field_schema import load_field_schema
from app.services.extraction import FieldSpec
from app.services.kinds.base import (
    BatchContext,
    ChunkStrategy,
    ExportColumn,
    ItemProcessor,
    KindInputError,
    NothingToProcess,
    ResultRow,
    TaskKind,
    TaskScope,
)
from app.services.kinds.registry import register
from app.services.record_screening import chat_clients, llm_cache_ttl, model_config_snapshot

logger = logging.getLogger(__name__)

TASK_TYPE = "dc_extraction"
CACHE_PREFIX = "dc:extraction:"
AGREED, CONFLICT, REVIEW = "agreed", "conflict", "review"


def field_specs(params: Mapping[str, Any]) -> list[FieldSpec]:
    """The task's fields (from its stored, already validated schema)."""
    return [FieldSpec.from_dict(f) for f in (params.get("schema") or {}).get("fields") or []]


def result_row(item_id: int, extraction: RecordExtraction) -> ResultRow:
    """The result row of one extracted record."""
    models = extraction.models
    prompt_tokens = sum(m.prompt_tokens for m in models)
    completion_tokens = sum(m.completion_tokens for m in models)
    cost = round(sum(m.cost for m in models), 8)
    decisions = [m.summary() for m in models]
    if extraction.failed:
        return ResultRow(item_id=item_id, status=ResultStatus.FAILED, decisions=decisions, error=extraction.error,
                         prompt_tokens=prompt_tokens, completion_tokens=completion_tokens, cost_estimate=cost)
    review = bool(extraction.review_fields)
    decision = CONFLICT if extraction.has_conflict else REVIEW if review else AGREED
    return ResultRow(item_id=item_id, decisions=decisions, llm_decision=decision, final_decision=decision,
                     has_conflict=extraction.has_conflict, manual_review_required=review, fields=extraction.fields,
                     prompt_tokens=prompt_tokens, completion_tokens=completion_tokens, cost_estimate=cost)


class DcExtractionProcessor(ItemProcessor):
    """Extracts the rows of one batch (rows loaded once, at open)."""

    def __init__(self, extractor: RecordExtractor, rows: Mapping[int, dict[str, Any]],
                 text_columns: list[str]) -> None:
        self.extractor = extractor
        self.rows = rows
        self.text_columns = text_columns
        self.concurrency = extractor.concurrency

    def process(self, item_id: int) -> ResultRow | None:
        """Extract one row; None when it was deleted since the run started."""
        row = self.rows.get(item_id)
        if row is None:
            return None
        text = record_text(row, self.text_columns)
        if not text.strip():
            return ResultRow(item_id=item_id, status=ResultStatus.FAILED,
                             error=f"no text in the text columns ({', '.join(self.text_columns)})")
        return result_row(item_id, self.extractor.extract(text))

    def estimated_cost(self, item_id: int) -> float | None:
        """The row's upper cost estimate with every model (reserved against a budget before the calls)."""
        row = self.rows.get(item_id)
        return 0.0 if row is None else self.extractor.max_cost(record_text(row, self.text_columns))

    def close(self) -> None:
        """Stop the extractor's call threads and HTTP clients."""
        self.extractor.close()


def _value(getter: Any) -> Any:
    def value(result: ScreeningResult | None, record: DcRecord) -> Any:
        return "" if result is None else getter(result, record)
    return value


def _field_part(name: str, part: str, model: str | None = None) -> Any:
    def read(result: ScreeningResult, _record: DcRecord) -> Any:
        entry = (result.fields or {}).get(name) or {}
        if part == "final":
            return final_value(entry)
        if part == "model":
            return (entry.get("by_model") or {}).get(model)
        if part == "evidence":
            return entry.get("evidence") or ""
        flags = list(entry.get("flags") or [])
        if entry.get("review"):
            flags.append("human_reviewed")
        elif entry.get("review_required"):
            flags.append("needs_review")
        return "; ".join(flags)
    return _value(read)


def _original(column: str) -> Any:
    return lambda _result, record: record.data.get(column)


class DcExtractionKind(TaskKind):
    """Clinical-record field extraction by two (or more) models."""

    name = TASK_TYPE
    chunk = ChunkStrategy(batch_size=50, seconds_per_item=10.0, description="clinical record field extraction")
    cache_prefix = CACHE_PREFIX
    cache_ttl_seconds = 30 * 24 * 3600
    literature_items = False

    def snapshot(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """The configured models, with the extraction prompt's version."""
        return {**model_config_snapshot(config), "prompt_version": EXTRACTION_PROMPT_VERSION}

    def normalise_params(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Validate the schema (KindInputError names the bad part) and keep what the run needs."""
        try:
            specs = load_field_schema(params.get("schema"))
        except ValidationError as exc:
            raise KindInputError("schema", f"invalid field schema: {exc.messages}") from None
        if not isinstance(params.get("dataset_id"), int):
            raise KindInputError("dataset_id", "dataset_id must be an integer")
        text_columns = [str(c) for c in params.get("text_columns") or []]
        if not text_columns:
            raise KindInputError("text_columns", "name at least one text column")
        return {"dataset_id": params["dataset_id"], "id_column": str(params.get("id_column") or ""),
                "text_columns": text_columns, "schema": {"fields": [s.to_dict() for s in specs]},
                "gold_columns": dict(params.get("gold_columns") or {}), "columns": list(params.get("columns") or []),
                **({"budget_usd": float(params["budget_usd"])} if params.get("budget_usd") is not None else {})}

    def list_items(self, session: Session, scope: TaskScope) -> list[int]:
        """The dataset's rows in file order, once its columns are checked against the parameters."""
        params = scope.params
        dataset = session.get(DcDataset, params["dataset_id"])
        if dataset is None or dataset.owner_id != scope.owner_id:
            raise KindInputError("dataset_id", f"dataset {params['dataset_id']} not found")
        columns = set(dataset.columns or [])
        if params["id_column"] not in columns:
            raise KindInputError("id_column", f"no column {params['id_column']!r} in the dataset")
        missing = [c for c in params["text_columns"] if c not in columns]
        if missing:
            raise KindInputError("text_columns", f"no column(s) {', '.join(map(repr, missing))} in the dataset")
        gold_missing = [c for c in params["gold_columns"].values() if c not in columns]
        if gold_missing:
            raise KindInputError("gold_columns", f"no column(s) {', '.join(map(repr, gold_missing))} in the dataset")
        ids = list(session.scalars(select(DcRecord.id).where(DcRecord.dataset_id == dataset.id)
                                   .order_by(DcRecord.row_index)))
        if not ids:
            raise NothingToProcess("The dataset has no rows.")
        return ids

    def open_processor(self, context: BatchContext) -> DcExtractionProcessor:
        """Load the batch's rows in one statement, then build the extractor for the task's models."""
        with context.engine.connect() as conn:
            rows = {r.id: r.data for r in conn.execute(select(DcRecord.id, DcRecord.data)
                                                       .where(DcRecord.id.in_(context.item_ids)))}
        snapshot = dict(context.model_config)
        models = [ModelSpec(m["provider"], m["model"]) for m in snapshot.get("models") or []]
        extractor = RecordExtractor(models, chat_clients(snapshot, context.config, context.engine),
                                    context.cache,
                                    price_table(context.config), field_specs(context.params),
                                    int(context.params["dataset_id"]),
                                    llm_cache_ttl(context.config),
                                    str(snapshot.get("prompt_version") or EXTRACTION_PROMPT_VERSION))
        return DcExtractionProcessor(extractor, rows, list(context.params.get("text_columns") or []))

    def result_fields(self, task: ScreeningTask) -> list[str]:
        """The schema's field names."""
        return [s.name for s in field_specs(task.params or {})]

    def export_columns(self, task: ScreeningTask) -> list[ExportColumn]:
        """The dataset's original columns, then per field: final value, each model's value, evidence, flags."""
        params = task.params or {}
        models = [f"{m.get('provider')}:{m.get('model')}" for m in (task.model_config or {}).get("models", [])]
        columns = [ExportColumn(c, _original(c)) for c in params.get("columns") or []]
        for spec in field_specs(params):
            columns.append(ExportColumn(spec.name, _field_part(spec.name, "final")))
            columns += [ExportColumn(f"{spec.name} [{m}]", _field_part(spec.name, "model", m)) for m in models]
            columns.append(ExportColumn(f"{spec.name} evidence", _field_part(spec.name, "evidence")))
            columns.append(ExportColumn(f"{spec.name} flags", _field_part(spec.name, "flags")))
        columns += [
            ExportColumn("extraction_status", _value(lambda r, rec: r.status)),
            ExportColumn("llm_decision", _value(lambda r, rec: r.llm_decision or "")),
            ExportColumn("manual_review_required", _value(lambda r, rec: r.manual_review_required)),
            ExportColumn("review_note", _value(lambda r, rec: r.review_note or "")),
            ExportColumn("error", _value(lambda r, rec: r.error or "")),
        ]
        return columns

    def export_items(self, session: Session, task: ScreeningTask) -> Iterator[tuple[Any, Any]]:
        """Every row of the dataset (file order) with its result, or None where it has none (yet)."""
        query = (select(ScreeningResult, DcRecord)
                 .select_from(DcRecord)
                 .outerjoin(ScreeningResult, and_(ScreeningResult.item_id == DcRecord.id,
                                                  ScreeningResult.task_id == task.id))
                 .where(DcRecord.dataset_id == int((task.params or {}).get("dataset_id") or 0))
                 .order_by(DcRecord.row_index))
        yield from session.execute(query.execution_options(yield_per=500))


DC_EXTRACTION = register(DcExtractionKind())
