"""Exports of a run: CSV (one row per item, the columns its task kind declares) and RIS (literature kinds).

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
from app.services.kinds import get_kind

EXPORT_FORMATS = ("csv", "ris")


def export_csv(session: Session, task: ScreeningTask) -> str:
    """The task's results as CSV text, with the columns of its kind (``TaskKind.export_columns``)."""
    kind = get_kind(task.task_type)
    columns = kind.export_columns(task)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([column.header for column in columns])
    for result, item in kind.export_items(session, task):
        writer.writerow([column.value(result, item) for column in columns])
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
    entry: dict[str, Any] = {"type_of_reference": "JOUR", "title": record.title,
                             "notes": [_note(result)],
                             "keywords": list(record.keywords or []) + [f"litscreen:{result.final_decision or 'failed'}"]}
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
    """The task's results as RIS text (literature kinds: each item is a record)."""
    entries = [ris_entry(result, record) for result, record in get_kind(task.task_type).export_items(session, task)]
    return rispy.dumps(entries)
