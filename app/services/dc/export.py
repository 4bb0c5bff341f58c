"""Exports of an extraction: CSV and XLSX with the columns the ``dc_extraction`` kind declares (the dataset's
original columns, then per field the final value, each model's value, the evidence and the flags).

Cells that a spreadsheet would run as a formula (starting with ``=``, ``+``, ``-``, ``@``, tab or CR) are written
with a leading apostrophe in CSV (OWASP's advice against CSV injection) and as explicit text cells in XLSX.
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Iterator
from typing import Any

from sqlalchemy.orm import Session

from app.models import ScreeningTask
from app.services.kinds import get_kind

logger = logging.getLogger(__name__)

EXPORT_FORMATS = ("csv", "xlsx")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def cell_text(value: Any) -> Any:
    """An exported value: lists joined with ``; ``, booleans as true/false, None as empty."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "; ".join(str(v) for v in value)
    if isinstance(value, dict):
        return str(value)
    return value


def _rows(session: Session, task: ScreeningTask) -> Iterator[list[Any]]:
    kind = get_kind(task.task_type)
    columns = kind.export_columns(task)
    yield [c.header for c in columns]
    for result, item in kind.export_items(session, task):
        yield [cell_text(c.value(result, item)) for c in columns]


def result_pairs(session: Session, task: ScreeningTask) -> Iterator[tuple[dict[str, Any] | None, dict[str, Any]]]:
    """``(result fields, original row)`` for every row of the task's dataset (accuracy's input)."""
    for result, record in get_kind(task.task_type).export_items(session, task):
        yield (result.fields if result is not None else None), record.data


def _csv_safe(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def export_csv(session: Session, task: ScreeningTask) -> str:
    """The task's results as CSV text."""
    out = io.StringIO()
    writer = csv.writer(out)
    for row in _rows(session, task):
        writer.writerow([_csv_safe(v) for v in row])
    return out.getvalue()


def export_xlsx(session: Session, task: ScreeningTask) -> bytes:
    """The task's results as an XLSX workbook (one sheet, written in openpyxl's streaming mode)."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("extraction")
    for row in _rows(session, task):
        cells = []
        for value in row:
            if isinstance(value, str):
                cell = WriteOnlyCell(sheet, value=value[:32767])
                cell.data_type = "s"  # never a formula, whatever it starts with
                cells.append(cell)
            else:
                cells.append(value)
        sheet.append(cells)
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()
