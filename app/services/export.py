"""Exports of a run: CSV and XLSX (one row per item, the columns its task kind declares) and RIS (literature kinds).

Literature kinds' columns carry the record's abstract, type, source databases, identifiers and human label
(app/services/record_export.py), so users can join the file back to their database exports and re-import it.
The RIS file is written with ``rispy`` so reference managers (Zotero, EndNote) and Covidence can re-import it:
standard tags only, the screening decision and the models' reasons in a note (``N1``) and the decision as a
keyword (``KW litscreen:include``) that those tools can filter on.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Any

import rispy
from openpyxl import Workbook
from sqlalchemy.orm import Session

from app.models import Literature, ScreeningResult, ScreeningTask
from app.services.kinds import get_kind
from app.services.record_export import record_ris_fields

EXPORT_FORMATS = ("csv", "ris", "xlsx")


def _table(session: Session, task: ScreeningTask) -> Iterator[list[Any]]:
    """The header, then one row per result, with the columns of the task's kind (CSV and XLSX rows)."""
    kind = get_kind(task.task_type)
    columns = kind.export_columns(task)
    yield [column.header for column in columns]
    for result, item in kind.export_items(session, task):
        yield [column.value(result, item) for column in columns]


def export_csv(session: Session, task: ScreeningTask) -> str:
    """The task's results as CSV text."""
    out = io.StringIO()
    csv.writer(out).writerows(_table(session, task))
    return out.getvalue()


def _cell(value: Any) -> Any:
    """A value openpyxl can store: numbers as they are, text without the control characters XLSX forbids (PDF
    text may carry them), cut at Excel's 32,767 characters per cell."""
    if value is None or isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    return "".join(ch for ch in str(value) if ch in "\t\n\r" or ord(ch) >= 32)[:32767]


def export_xlsx(session: Session, task: ScreeningTask) -> bytes:
    """The task's results as an Excel workbook (the CSV's columns, one sheet)."""
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("results")
    for row in _table(session, task):
        sheet.append([_cell(value) for value in row])
    out = io.BytesIO()
    workbook.save(out)
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
    entry = record_ris_fields(record)
    entry["notes"] = [_note(result)]
    entry["keywords"].append(f"litscreen:{result.final_decision or 'failed'}")
    return entry


def export_ris(session: Session, task: ScreeningTask) -> str:
    """The task's results as RIS text (literature kinds: each item is a record)."""
    entries = [ris_entry(result, record) for result, record in get_kind(task.task_type).export_items(session, task)]
    return rispy.dumps(entries)
