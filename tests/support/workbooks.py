"""Spreadsheet files for the dataset tests: real XLSX written by openpyxl, and hostile files built by hand."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Sequence
from typing import Any

from openpyxl import Workbook


def xlsx_bytes(rows: Sequence[Sequence[Any]], *, merged: str | None = None, hidden_sheet: bool = False,
               extra_sheet: Sequence[Sequence[Any]] | None = None, far_cell: str | None = None) -> bytes:
    """An XLSX file with ``rows`` on sheet 'Notes' (formulas are strings starting with '=')."""
    workbook = Workbook()
    sheet = workbook.active
    sheet.title = "Notes"
    for row in rows:
        sheet.append(list(row))
    if merged:
        sheet.merge_cells(merged)
    if far_cell:
        sheet[far_cell] = "x"
    if extra_sheet is not None:
        other = workbook.create_sheet("Second")
        for row in extra_sheet:
            other.append(list(row))
    if hidden_sheet:
        workbook.create_sheet("Secret").sheet_state = "hidden"
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def zip_bomb_xlsx(member_bytes: int = 40 * 1024 * 1024) -> bytes:
    """A small ZIP that looks like a workbook but whose sheet unpacks to ``member_bytes`` of zeros."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("xl/workbook.xml", "<workbook/>")
        with archive.open("xl/worksheets/sheet1.xml", "w") as member:
            chunk = b"0" * (1024 * 1024)
            for _ in range(member_bytes // len(chunk)):
                member.write(chunk)
    return out.getvalue()
