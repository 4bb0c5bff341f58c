"""Exports of a screening run: CSV (one row per record, one column group per model) and RIS.

The RIS file is written with ``rispy`` so reference managers (Zotero, EndNote) and Covidence can re-import it:
standard tags only, the screening decision and the models' reasons in a note (``N1``) and the decision as a
keyword (``KW litscreen:include``) that those tools can filter on.
"""

from __future__ import annotations

import csv
import io
from typing import Any

import rispy
from sqlalchemy.orm import Session

from app.models import Literature, ScreeningResult, ScreeningTask
from app.services.screening_results import iter_results, machine_decision

EXPORT_FORMATS = ("csv", "ris")


def _models(task: ScreeningTask) -> list[str]:
    return [f"{m.get('provider')}:{m.get('model')}" for m in (task.model_config or {}).get("models", [])]


def _decision_by_model(result: ScreeningResult) -> dict[str, dict[str, Any]]:
    return {str(d.get("model")): d for d in result.decisions or []}


def export_csv(session: Session, task: ScreeningTask) -> str:
    """The task's results as CSV text."""
    models = _models(task)
    header = ["literature_id", "title", "authors", "year", "journal", "doi", "pmid", "decision",
              "llm_decision", "has_conflict", "manual_review_required", "review_decision", "review_note",
              "status", "error"]
    for model in models:
        header += [f"{model} decision", f"{model} reason", f"{model} confidence"]
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    for result, record in iter_results(session, task):
        by_model = _decision_by_model(result)
        row = [record.id, record.title, "; ".join(record.authors or []), record.year or "", record.journal or "",
               record.doi or "", record.pmid or "", result.final_decision or "", machine_decision(result) or "",
               str(result.has_conflict).lower(), str(result.manual_review_required).lower(),
               result.review_decision or "", result.review_note or "", result.status, result.error or ""]
        for model in models:
            decision = by_model.get(model, {})
            row += [decision.get("decision") or "", decision.get("reason") or "",
                    "" if decision.get("confidence") is None else decision.get("confidence")]
        writer.writerow(row)
    return out.getvalue()


def _note(result: ScreeningResult) -> str:
    parts = [f"litscreen decision: {result.final_decision or 'failed'}"]
    if result.has_conflict:
        parts.append("models disagreed")
    if result.review_decision:
        note = f"human review: {result.review_decision}"
        if result.review_note:
            note += f" ({result.review_note})"
        parts.append(note)
    for decision in result.decisions or []:
        if decision.get("decision"):
            parts.append(f"{decision.get('model')}: {decision.get('decision')} — {decision.get('reason') or ''}"
                         .strip())
        elif decision.get("error"):
            parts.append(f"{decision.get('model')}: failed — {decision.get('error')}")
    if result.status == "failed" and result.error:
        parts.append(f"error: {result.error}")
    return " | ".join(parts).replace("\r", " ").replace("\n", " ")


def ris_entry(result: ScreeningResult, record: Literature) -> dict[str, Any]:
    """One RIS reference (rispy's field names) for a screened record."""
    keywords = [*(record.keywords or []), f"litscreen:{result.final_decision or 'failed'}"]
    entry: dict[str, Any] = {"type_of_reference": "JOUR", "title": record.title, "notes": [_note(result)],
                             "keywords": keywords}
    if record.abstract:
        entry["abstract"] = record.abstract
    if record.authors:
        entry["authors"] = list(record.authors)
    if record.year:
        entry["year"] = str(record.year)
    if record.journal:
        entry["journal_name"] = record.journal
    if record.doi:
        entry["doi"] = record.doi
    if record.pmid:
        entry["accession_number"] = record.pmid
    return entry


def export_ris(session: Session, task: ScreeningTask) -> str:
    """The task's results as RIS text."""
    entries = [ris_entry(result, record) for result, record in iter_results(session, task)]
    return rispy.dumps(entries)
