"""The ``fulltext`` kind: full-text screening with 12-field extraction (the PRISMA full-text stage).

Items are a project's records with a usable full text whose title/abstract decision (the newest title/abstract
task's final decision, a human's review included) is include or conflict — or the task's ``literature_ids``.
Each document is read by every model (in section-aware parts when longer than the model's context); the result
carries the combined eligibility decision, the exclusion reason and the 12 fields with verified evidence and
per-field agreement (``app/services/fulltext/``). About 50 documents a batch (≈ 18 s of LLM time each).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.llm.fulltext_prompts import FIELD_NAMES, FULLTEXT_PROMPT_VERSION
from app.models import Fulltext, Literature, Project, ScreeningResult, ScreeningTask
from app.models.statuses import ResultStatus
from app.services.fulltext.export_columns import fulltext_export_columns
from app.services.fulltext.extractor import (
    DEFAULT_FULLTEXT_CACHE_TTL_SECONDS,
    FULLTEXT_CACHE_PREFIX,
    Criteria,
    Document,
    DocumentScreening,
    FulltextExtractor,
    build_extractor,
    fulltext_cache_ttl,
    model_contexts,
)
from app.services.fulltext.items import title_abstract_passed
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

logger = logging.getLogger(__name__)

MAX_LITERATURE_IDS = 100_000


def result_row(literature_id: int, screening: DocumentScreening) -> ResultRow:
    """The result row of one screened document."""
    return ResultRow(
        item_id=literature_id, literature_id=literature_id,
        status=ResultStatus.FAILED if screening.failed else ResultStatus.SUCCESS,
        decisions=[m.decision_entry() for m in screening.models], llm_decision=screening.llm_decision,
        final_decision=screening.llm_decision, has_conflict=screening.has_conflict,
        manual_review_required=screening.manual_review_required, exclusion_reason=screening.exclusion_reason,
        fields=screening.fields, error=screening.error, prompt_tokens=screening.prompt_tokens,
        completion_tokens=screening.completion_tokens, cost_estimate=screening.cost,
    )


class FulltextProcessor(ItemProcessor):
    """Screens the documents of one batch (their texts loaded once, at open)."""

    def __init__(self, extractor: FulltextExtractor, criteria: Criteria, documents: Mapping[int, Document | None],
                 known: set[int]) -> None:
        self.extractor = extractor
        self.criteria = criteria
        self.documents = documents
        self.known = known
        # as many documents in flight as the provider allows calls: each document's calls then queue at the
        # provider limit, so a place freed between two calls is taken at once (with concurrency // models the
        # places idled between calls: 0.63 of the LLM-bound ideal, docs/BENCHMARKS.md)
        self.concurrency = extractor.concurrency

    def process(self, item_id: int) -> ResultRow | None:
        """Screen one document; None when its record was deleted since the task started."""
        if item_id not in self.known:
            return None
        document = self.documents.get(item_id)
        if document is None:
            return ResultRow(item_id=item_id, literature_id=item_id, status=ResultStatus.FAILED,
                             error="no usable full text is attached to this record (attach one and retry)")
        return result_row(item_id, self.extractor.screen(self.criteria, document))

    def close(self) -> None:
        """Stop the extractor's call threads and HTTP clients."""
        self.extractor.close()


class FulltextKind(TaskKind):
    """Full-text eligibility and 12-field extraction by two (or more) models."""

    name = "fulltext"
    chunk = ChunkStrategy(batch_size=50, seconds_per_item=18.0,
                          description="full-text screening and 12-field extraction by two models")
    cache_prefix = FULLTEXT_CACHE_PREFIX
    cache_ttl_seconds = DEFAULT_FULLTEXT_CACHE_TTL_SECONDS
    literature_items = True

    def normalise_params(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """``literature_ids`` (optional): a list of distinct positive record ids."""
        ids = params.get("literature_ids")
        if ids is None:
            return {}
        if not isinstance(ids, list) or not all(isinstance(i, int) and not isinstance(i, bool) and i > 0
                                                for i in ids):
            raise KindInputError("literature_ids", "literature_ids must be a list of record ids")
        if not ids:
            raise KindInputError("literature_ids", "literature_ids must not be empty (leave it out for the default)")
        if len(ids) > MAX_LITERATURE_IDS:
            raise KindInputError("literature_ids", f"at most {MAX_LITERATURE_IDS} literature_ids")
        return {"literature_ids": list(dict.fromkeys(ids))}

    def snapshot(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """The models (as for title/abstract), this kind's prompt version and each model's context window."""
        snapshot = super().snapshot(config)
        keys = [f"{m['provider']}:{m['model']}" for m in snapshot["models"]]
        snapshot.update(prompt_version=FULLTEXT_PROMPT_VERSION, contexts=model_contexts(config, keys))
        return snapshot

    def list_items(self, session: Session, scope: TaskScope) -> list[int]:
        """The requested records (each must have a usable full text), else those that passed title/abstract."""
        with_text = select(Fulltext.literature_id).join(Literature, Literature.id == Fulltext.literature_id).where(
            Literature.project_id == scope.project_id, Fulltext.text_available.is_(True))
        requested = (scope.params or {}).get("literature_ids")
        if requested:
            usable = set(session.scalars(with_text.where(Fulltext.literature_id.in_(requested))))
            missing = [i for i in requested if i not in usable]
            if missing:
                shown = ", ".join(str(i) for i in missing[:20]) + (" …" if len(missing) > 20 else "")
                raise KindInputError("literature_ids", f"{len(missing)} of the records have no usable full text "
                                                       f"in this project: {shown}")
            return list(requested)
        passed = title_abstract_passed(session, scope.project_id)
        if passed is None:
            raise NothingToProcess("No title/abstract screening of this project yet: screen titles and abstracts "
                                   "first, or pass literature_ids.")
        usable = set(session.scalars(with_text))
        ids = sorted(i for i in passed if i in usable)
        if not ids:
            raise NothingToProcess(f"None of the {len(passed)} records that passed title/abstract screening has a "
                                   "usable full text; attach PDFs first (POST …/fulltexts).")
        return ids

    def open_processor(self, context: BatchContext) -> FulltextProcessor:
        """Load the project's criteria and the batch's documents in one connection, then build the extractor."""
        with context.engine.connect() as conn:
            project = conn.execute(select(Project.picos, Project.inclusion_criteria, Project.exclusion_criteria)
                                   .where(Project.id == context.project_id)).one()
            rows = conn.execute(
                select(Literature.id, Literature.title, Fulltext.page_texts, Fulltext.text_available)
                .outerjoin(Fulltext, Fulltext.literature_id == Literature.id)
                .where(Literature.id.in_(context.item_ids))).all()
        criteria = Criteria(dict(project.picos or {}), project.inclusion_criteria, project.exclusion_criteria)
        documents = {r.id: Document(r.id, r.title or "", list(r.page_texts)) if r.text_available else None
                     for r in rows}
        extractor = build_extractor(dict(context.model_config), context.config, context.cache, self.cache_prefix,
                                    fulltext_cache_ttl(context.config), limits_engine=context.engine)
        return FulltextProcessor(extractor, criteria, documents, {r.id for r in rows})

    def result_fields(self, task: ScreeningTask) -> list[str]:
        """The 12 extraction fields."""
        return list(FIELD_NAMES)

    def export_columns(self, task: ScreeningTask) -> list[ExportColumn]:
        """One row per study: record, decisions and exclusion reason, then every field with evidence, page and
        agreement, then each model's decision."""
        return fulltext_export_columns(task)

    def export_items(self, session: Session, task: ScreeningTask) -> Iterator[tuple[ScreeningResult, Any]]:
        """Every result with its record, in record order."""
        query = (select(ScreeningResult, Literature)
                 .join(Literature, Literature.id == ScreeningResult.literature_id)
                 .where(ScreeningResult.task_id == task.id).order_by(ScreeningResult.item_id))
        # unpacked: plain (result, record) tuples, not SQLAlchemy Row objects
        for result, record in session.execute(query.execution_options(yield_per=200)):  # noqa: UP028
            yield result, record


FULLTEXT = register(FulltextKind())
