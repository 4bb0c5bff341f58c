"""The full-text export's columns: one row per study, every field with its evidence, page and agreement."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from app.llm.fulltext_prompts import FIELD_NAMES
from app.models import ScreeningResult, ScreeningTask
from app.services.fulltext.fields import fields_needing_review
from app.services.kinds.base import ExportColumn


def _text(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    return value


def _field(name: str, key: str) -> Callable[[ScreeningResult, Any], Any]:
    def value(result: ScreeningResult, _record: Any) -> Any:
        entry = (result.fields or {}).get(name) or {}
        if key == "reviewed":
            return "true" if entry.get("review") else ""
        return _text(entry.get(key))
    return value


def _model(model: str, key: str) -> Callable[[ScreeningResult, Any], Any]:
    def value(result: ScreeningResult, _record: Any) -> Any:
        entry = next((d for d in result.decisions or [] if str(d.get("model")) == model), {})
        return _text(entry.get(key))
    return value


def _models(task: ScreeningTask) -> list[str]:
    return [f"{m.get('provider')}:{m.get('model')}" for m in (task.model_config or {}).get("models", [])]


def fulltext_export_columns(task: ScreeningTask) -> list[ExportColumn]:
    """Record, decision, exclusion reason and review; per field value / evidence / page / agreed / verified /
    reviewed; per model decision, exclusion reason and reason."""
    columns = [
        ExportColumn("literature_id", lambda r, rec: rec.id),
        ExportColumn("title", lambda r, rec: rec.title),
        ExportColumn("authors", lambda r, rec: "; ".join(rec.authors or [])),
        ExportColumn("year", lambda r, rec: rec.year or ""),
        ExportColumn("journal", lambda r, rec: rec.journal or ""),
        ExportColumn("doi", lambda r, rec: rec.doi or ""),
        ExportColumn("pmid", lambda r, rec: rec.pmid or ""),
        ExportColumn("decision", lambda r, rec: r.final_decision or ""),
        ExportColumn("llm_decision", lambda r, rec: r.llm_decision or ""),
        ExportColumn("exclusion_reason", lambda r, rec: r.exclusion_reason or ""),
        ExportColumn("has_conflict", lambda r, rec: _text(r.has_conflict)),
        ExportColumn("manual_review_required", lambda r, rec: _text(r.manual_review_required)),
        ExportColumn("fields_to_review", lambda r, rec: "; ".join(fields_needing_review(r.fields))),
        ExportColumn("review_decision", lambda r, rec: r.review_decision or ""),
        ExportColumn("review_note", lambda r, rec: r.review_note or ""),
        ExportColumn("status", lambda r, rec: r.status),
        ExportColumn("error", lambda r, rec: r.error or ""),
    ]
    for name in FIELD_NAMES:
        columns += [ExportColumn(f"{name}", _field(name, "value")),
                    ExportColumn(f"{name} evidence", _field(name, "evidence")),
                    ExportColumn(f"{name} page", _field(name, "page")),
                    ExportColumn(f"{name} agreed", _field(name, "agreed")),
                    ExportColumn(f"{name} verified", _field(name, "verified")),
                    ExportColumn(f"{name} reviewed", _field(name, "reviewed"))]
    for model in _models(task):
        columns += [ExportColumn(f"{model} decision", _model(model, "decision")),
                    ExportColumn(f"{model} exclusion_reason", _model(model, "exclusion_reason")),
                    ExportColumn(f"{model} reason", _model(model, "reason"))]
    return columns
