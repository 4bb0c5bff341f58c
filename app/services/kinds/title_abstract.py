"""The ``title_abstract`` kind: every record of a project judged by each configured model on its title and
abstract against the project's PICOS criteria; the decisions are combined by the task's decision rule."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.llm.prompts import REQUEST_PARAMS
from app.models import Literature, Project, ScreeningResult, ScreeningTask
from app.models.statuses import ResultStatus
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
from app.services.record_export import RECORD_COLUMNS, record_columns
from app.services.record_screening import (
    DEFAULT_LLM_CACHE_TTL_SECONDS,
    LLM_CACHE_PREFIX,
    Criteria,
    RecordScreening,
    RecordText,
    Screener,
    build_screener,
    llm_cache_ttl,
)

logger = logging.getLogger(__name__)


def result_row(literature_id: int, screening: RecordScreening) -> ResultRow:
    """The result row of one screened record."""
    # a shallow copy is JSON-able already (to_dict's deep copy costs ~0.1 ms a record)
    decisions = [dict(vars(d)) for d in screening.decisions]
    return ResultRow(
        item_id=literature_id, literature_id=literature_id,
        status=ResultStatus.FAILED if screening.failed else ResultStatus.SUCCESS,
        decisions=decisions, llm_decision=screening.final_decision, final_decision=screening.final_decision,
        has_conflict=bool(screening.has_conflict), manual_review_required=bool(screening.manual_review_required),
        error=screening.error if screening.failed else None, prompt_tokens=int(screening.prompt_tokens or 0),
        completion_tokens=int(screening.completion_tokens or 0), cost_estimate=float(screening.cost or 0.0),
    )


class TitleAbstractProcessor(ItemProcessor):
    """Screens the records of one batch with the task's models (records loaded once, at open)."""

    def __init__(self, screener: Screener, criteria: Criteria, records: Mapping[int, RecordText]) -> None:
        self.screener = screener
        self.criteria = criteria
        self.records = records
        self.concurrency = screener.concurrency

    def process(self, item_id: int) -> ResultRow | None:
        """Screen one record; None when it was deleted since the run started."""
        record = self.records.get(item_id)
        if record is None:
            return None
        return result_row(item_id, self.screener.screen(self.criteria, record))

    def estimated_cost(self, item_id: int) -> float | None:
        """The record's upper cost estimate with every model (reserved against a budget before the calls)."""
        record = self.records.get(item_id)
        return 0.0 if record is None else self.screener.max_cost(self.criteria, record)

    def close(self) -> None:
        """Stop the screener's call threads and HTTP clients."""
        self.screener.close()


def _models(task: ScreeningTask) -> list[str]:
    return [f"{m.get('provider')}:{m.get('model')}" for m in (task.model_config or {}).get("models", [])]


def _record_column(index: int) -> Any:
    """Reader of RECORD_COLUMNS[index] (abstract, type, sources, accession number, human label)."""
    return lambda result, record: record_columns(record)[index]


def _decision_of(model: str, key: str) -> Any:
    def value(result: ScreeningResult, _record: Any) -> Any:
        decision = next((d for d in result.decisions or [] if str(d.get("model")) == model), {})
        found = decision.get(key)
        return "" if found is None else found
    return value


class TitleAbstractKind(TaskKind):
    """Title/abstract screening by two (or more) models."""

    name = "title_abstract"
    chunk = ChunkStrategy(batch_size=100, seconds_per_item=7.0, description="title/abstract screening by two models")
    cache_prefix = LLM_CACHE_PREFIX
    cache_ttl_seconds = DEFAULT_LLM_CACHE_TTL_SECONDS  # LLM_CACHE_TTL_SECONDS overrides it (README)

    def locked_config(self, snapshot: Mapping[str, Any]) -> dict[str, Any]:
        """Models, prompt version, decision rule, the request parameters and the SHA-256 of the prompt text."""
        from app.services.methods import prompt_hash

        return {**super().locked_config(snapshot),
                "parameters": {k: v for k, v in REQUEST_PARAMS.items() if k != "response_format"},
                "prompt_sha256": prompt_hash()}

    def normalise_params(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """``literature_ids`` (optional): screen only these records of the project."""
        ids = params.get("literature_ids")
        if ids is None:
            return {}
        if not isinstance(ids, list) or not ids or not all(isinstance(i, int) and i > 0 for i in ids):
            raise KindInputError("literature_ids", "literature_ids must be a non-empty list of record ids")
        return {"literature_ids": sorted(set(ids))}

    def list_items(self, session: Session, scope: TaskScope) -> list[int]:
        """Every record of the project (or the ``literature_ids`` given), in id order."""
        query = select(Literature.id).where(Literature.project_id == scope.project_id).order_by(Literature.id)
        wanted = scope.params.get("literature_ids")
        if wanted is not None:
            query = query.where(Literature.id.in_(wanted))
        ids = list(session.scalars(query))
        if wanted is not None and len(ids) != len(wanted):
            missing = sorted(set(wanted) - set(ids))[:10]
            raise KindInputError("literature_ids", f"records {missing} are not in this project")
        if not ids:
            raise NothingToProcess("The project has no records to screen; import some first.")
        return ids

    def open_processor(self, context: BatchContext) -> TitleAbstractProcessor:
        """Load the project's criteria and the batch's records in one connection, then build the screener."""
        with context.engine.connect() as conn:
            project = conn.execute(select(Project.picos, Project.inclusion_criteria, Project.exclusion_criteria)
                                   .where(Project.id == context.project_id)).one()
            rows = conn.execute(select(Literature.id, Literature.title, Literature.abstract)
                                .where(Literature.id.in_(context.item_ids))).all()
        criteria = Criteria(picos=dict(project.picos or {}), inclusion_criteria=project.inclusion_criteria,
                            exclusion_criteria=project.exclusion_criteria)
        records = {r.id: RecordText(literature_id=r.id, title=r.title or "", abstract=r.abstract) for r in rows}
        screener = build_screener(dict(context.model_config), context.config, context.cache, self.cache_prefix,
                                  llm_cache_ttl(context.config), limits_engine=context.engine)
        return TitleAbstractProcessor(screener, criteria, records)

    def export_columns(self, task: ScreeningTask) -> list[ExportColumn]:
        """Record fields, the decisions (final and the machine's own), the review, then each model's columns."""
        columns = [
            ExportColumn("literature_id", lambda r, rec: rec.id),
            ExportColumn("title", lambda r, rec: rec.title),
            ExportColumn("authors", lambda r, rec: "; ".join(rec.authors or [])),
            ExportColumn("year", lambda r, rec: rec.year or ""),
            ExportColumn("journal", lambda r, rec: rec.journal or ""),
            ExportColumn("doi", lambda r, rec: rec.doi or ""),
            ExportColumn("pmid", lambda r, rec: rec.pmid or ""),
            *(ExportColumn(header, _record_column(index)) for index, header in enumerate(RECORD_COLUMNS)),
            ExportColumn("decision", lambda r, rec: r.final_decision or ""),
            ExportColumn("llm_decision", lambda r, rec: r.llm_decision or ""),
            ExportColumn("has_conflict", lambda r, rec: str(r.has_conflict).lower()),
            ExportColumn("manual_review_required", lambda r, rec: str(r.manual_review_required).lower()),
            ExportColumn("review_decision", lambda r, rec: r.review_decision or ""),
            ExportColumn("review_note", lambda r, rec: r.review_note or ""),
            ExportColumn("status", lambda r, rec: r.status),
            ExportColumn("error", lambda r, rec: r.error or ""),
        ]
        for model in _models(task):
            columns += [ExportColumn(f"{model} decision", _decision_of(model, "decision")),
                        ExportColumn(f"{model} reason", _decision_of(model, "reason")),
                        ExportColumn(f"{model} confidence", _decision_of(model, "confidence"))]
        return columns

    def export_items(self, session: Session, task: ScreeningTask) -> Iterator[tuple[ScreeningResult, Any]]:
        """Every result with its record, in record order."""
        query = (select(ScreeningResult, Literature)
                 .join(Literature, Literature.id == ScreeningResult.literature_id)
                 .where(ScreeningResult.task_id == task.id).order_by(ScreeningResult.item_id))
        # unpacked: plain (result, record) tuples, not SQLAlchemy Row objects
        for result, record in session.execute(query.execution_options(yield_per=500)):  # noqa: UP028
            yield result, record


TITLE_ABSTRACT = register(TitleAbstractKind())
