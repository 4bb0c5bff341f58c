"""Reading an uploaded CSV or XLSX file into a header and rows, defensively.

CSV: decoded like the literature importer (UTF-8 / UTF-16 with BOM, Windows-1252 fallback), the delimiter
sniffed by ``csv.Sniffer``, parsed with ``csv``. XLSX: opened with ``python-calamine`` (values), after two
guards on the ZIP container (total uncompressed size and compression ratio: zip bombs) and one streaming pass
over the chosen sheet's XML (``xml.etree.ElementTree.iterparse``) that counts formula cells and finds the sheet's
real extent, so a sheet claiming 1,048,576 x 16,384 cells is refused before anything allocates it.
Rows whose cells are all empty are skipped (and counted). Values are kept as read (CSV: strings; XLSX: strings,
numbers, booleans, dates as ISO strings).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import logging
import re
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from xml.etree import ElementTree

from app.config import Settings
from app.importers.decoding import decode_upload
from app.importers.errors import ImportRejected
from app.services.dc.errors import DatasetRejected

logger = logging.getLogger(__name__)

XLSX_MAGIC = b"PK\x03\x04"
_MAIN_NS = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
_REL_NS = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}"
_PKG_REL_NS = "{http://schemas.openxmlformats.org/package/2006/relationships}"
_CELL_REF = re.compile(r"^([A-Z]{1,3})(\d+)$")


@dataclass
class ReadingLimits:
    """Limits on one upload: rows kept, ZIP uncompressed bytes and ratio, sheet extent in cells."""

    max_rows: int = 100_000
    max_uncompressed_bytes: int = 1024 * 1024 * 1024
    max_compression_ratio: int = 200
    max_sheet_cells: int = 50_000_000

    @classmethod
    def from_config(cls, config: Mapping[str, Any] | Settings | None) -> ReadingLimits:
        """``DC_MAX_ROWS``, ``DC_MAX_UNCOMPRESSED_BYTES``, ``DC_MAX_COMPRESSION_RATIO``, ``DC_MAX_SHEET_CELLS``."""
        limits = Settings.of(config).datasets
        return cls(limits.max_rows, limits.max_uncompressed_bytes, limits.max_compression_ratio,
                   limits.max_sheet_cells)


@dataclass
class RawTable:
    """The cells of one sheet (or a CSV), as read, before header detection."""

    file_format: str
    rows: list[list[Any]]                     # non-empty rows only, in file order
    row_numbers: list[int]                    # the 1-based file row (line) of each kept row
    empty_rows_skipped: int = 0
    encoding: str | None = None
    delimiter: str | None = None
    ragged_rows: list[int] = field(default_factory=list)     # CSV rows with more cells than the header
    sheet: str | None = None
    sheets: list[dict[str, Any]] = field(default_factory=list)  # [{name, visible}]
    merged_ranges: int = 0
    formula_cells: int = 0
    formula_refs: list[str] = field(default_factory=list)    # the first few, e.g. "C7"
    warnings: list[str] = field(default_factory=list)


def read_table(data: bytes, filename: str, sheet: str | None, limits: ReadingLimits) -> RawTable:
    """The file's cells; DatasetRejected (415/422/413) for what cannot be read, naming the problem."""
    if not data:
        raise DatasetRejected(422, f"The uploaded file '{filename}' is empty.")
    if data.startswith(XLSX_MAGIC):
        return _read_xlsx(data, filename, sheet, limits)
    if filename.lower().endswith((".xlsx", ".xlsm")):
        raise DatasetRejected(422, f"'{filename}' is not a readable XLSX file (it is not a ZIP container).")
    if sheet:
        raise DatasetRejected(422, "'sheet' applies to XLSX files only; this upload is CSV.", field="sheet")
    return _read_csv(data, filename, limits)


def _is_empty(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _read_csv(data: bytes, filename: str, limits: ReadingLimits) -> RawTable:
    try:
        decoded = decode_upload(data, filename)
    except ImportRejected as exc:
        message = exc.message.replace("(expected RIS, PubMed MEDLINE/.nbib, BibTeX or CSV)", "(expected CSV or XLSX)")
        raise DatasetRejected(exc.status, message) from None
    text = decoded.text
    try:
        dialect: Any = csv.Sniffer().sniff(text[:8192], delimiters=",;\t|")
        delimiter = dialect.delimiter
    except csv.Error:
        delimiter = ","
    table = RawTable("csv", [], [], encoding=decoded.encoding, delimiter=delimiter, warnings=list(decoded.warnings))
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    width: int | None = None
    try:
        for row in reader:
            if all(_is_empty(c) for c in row):
                table.empty_rows_skipped += 1
                continue
            if len(table.rows) >= limits.max_rows + 1:
                raise DatasetRejected(422, f"'{filename}' has more than {limits.max_rows} data rows (DC_MAX_ROWS).")
            if width is None:
                width = len(row)
            elif len(row) > width:
                table.ragged_rows.append(reader.line_num)
            table.rows.append(row)
            table.row_numbers.append(reader.line_num)
    except csv.Error as exc:
        raise DatasetRejected(422, f"'{filename}' is not valid CSV near line {reader.line_num}: {exc}.") from None
    return table


def _check_zip(data: bytes, filename: str, limits: ReadingLimits) -> zipfile.ZipFile:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        members = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError):
        raise DatasetRejected(422, f"'{filename}' is not a readable XLSX file (damaged ZIP container).") from None
    total = sum(m.file_size for m in members)
    if total > limits.max_uncompressed_bytes:
        raise DatasetRejected(413, f"'{filename}' unpacks to {total} bytes, more than the limit of "
                                   f"{limits.max_uncompressed_bytes} (DC_MAX_UNCOMPRESSED_BYTES).")
    for member in members:
        if member.file_size > 10 * 1024 * 1024 and member.file_size > limits.max_compression_ratio * max(
                member.compress_size, 1):
            raise DatasetRejected(422, f"'{filename}' looks like a zip bomb: a part compressed more than "
                                       f"{limits.max_compression_ratio}:1 (DC_MAX_COMPRESSION_RATIO).")
    if "xl/workbook.xml" not in archive.namelist():
        raise DatasetRejected(422, f"'{filename}' is a ZIP file but not an Excel workbook (no xl/workbook.xml).")
    return archive


def _sheet_paths(archive: zipfile.ZipFile) -> dict[str, str]:
    """Sheet name -> its XML part, from workbook.xml and its relationships."""
    workbook = ElementTree.fromstring(archive.read("xl/workbook.xml"))
    rels = ElementTree.fromstring(archive.read("xl/_rels/workbook.xml.rels"))
    targets = {r.get("Id"): str(r.get("Target")) for r in rels.iter(f"{_PKG_REL_NS}Relationship")}
    paths = {}
    for sheet in workbook.iter(f"{_MAIN_NS}sheet"):
        target = targets.get(sheet.get(f"{_REL_NS}id"), "")
        target = target.lstrip("/") if target.startswith("/") else "xl/" + target
        paths[str(sheet.get("name"))] = target
    return paths


def _column_number(letters: str) -> int:
    number = 0
    for ch in letters:
        number = number * 26 + ord(ch) - 64
    return number


def _scan_sheet_xml(archive: zipfile.ZipFile, path: str, table: RawTable, filename: str,
                    limits: ReadingLimits) -> None:
    """One streaming pass: formula cells and the sheet's real extent (refused when absurdly large)."""
    max_row = max_col = 0
    ref = ""
    with archive.open(path) as stream:
        for _event, element in ElementTree.iterparse(stream, events=("end",)):
            tag = element.tag
            if tag == f"{_MAIN_NS}c":
                ref = element.get("r") or ""
                match = _CELL_REF.match(ref)
                if match and (element.find(f"{_MAIN_NS}v") is not None or element.find(f"{_MAIN_NS}is") is not None
                              or element.find(f"{_MAIN_NS}f") is not None):
                    max_row = max(max_row, int(match.group(2)))
                    max_col = max(max_col, _column_number(match.group(1)))
                if element.find(f"{_MAIN_NS}f") is not None:
                    table.formula_cells += 1
                    if len(table.formula_refs) < 10:
                        table.formula_refs.append(ref)
                element.clear()
            elif tag == f"{_MAIN_NS}row":
                element.clear()
    if max_row * max_col > limits.max_sheet_cells:
        raise DatasetRejected(422, f"Sheet '{table.sheet}' of '{filename}' spans {max_row} rows x {max_col} "
                                   f"columns, more than {limits.max_sheet_cells} cells (DC_MAX_SHEET_CELLS).")


def _json_value(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ") if value.time() != dt.time() else value.date().isoformat()
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return str(value)
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    return value


def _read_xlsx(data: bytes, filename: str, sheet: str | None, limits: ReadingLimits) -> RawTable:
    import python_calamine

    archive = _check_zip(data, filename, limits)
    try:
        paths = _sheet_paths(archive)
        workbook = python_calamine.CalamineWorkbook.from_filelike(io.BytesIO(data))
        metadata = workbook.sheets_metadata
    except (KeyError, ElementTree.ParseError, python_calamine.CalamineError, ValueError, OSError):
        raise DatasetRejected(422, f"'{filename}' is not a readable XLSX file (damaged workbook).") from None
    sheets: list[dict[str, Any]] = [{"name": str(m.name),
                                     "visible": str(m.visible).rsplit(".", 1)[-1].lower() == "visible"}
                                    for m in metadata]
    names = [str(s["name"]) for s in sheets]
    if sheet is None:
        visible = [str(s["name"]) for s in sheets if s["visible"]]
        if not visible:
            raise DatasetRejected(422, f"'{filename}' has no visible sheet; name one with 'sheet'.", field="sheet")
        sheet = visible[0]
    elif sheet not in names:
        raise DatasetRejected(422, f"'{filename}' has no sheet named {sheet!r}; its sheets are: "
                                   f"{', '.join(names)}.", field="sheet")
    table = RawTable("xlsx", [], [], sheet=sheet, sheets=sheets)
    try:
        if sheet in paths:
            _scan_sheet_xml(archive, paths[sheet], table, filename, limits)
        worksheet = workbook.get_sheet_by_name(sheet)
        table.merged_ranges = len(worksheet.merged_cell_ranges or [])
        start_row = (worksheet.start or (0, 0))[0]
        for offset, row in enumerate(worksheet.iter_rows()):
            if all(_is_empty(c) for c in row):
                table.empty_rows_skipped += 1
                continue
            if len(table.rows) >= limits.max_rows + 1:
                raise DatasetRejected(422, f"Sheet '{sheet}' has more than {limits.max_rows} data rows (DC_MAX_ROWS).")
            table.rows.append([_json_value(c) for c in row])
            table.row_numbers.append(start_row + offset + 1)
    except (ElementTree.ParseError, python_calamine.CalamineError, zipfile.BadZipFile, ValueError, OSError,
            EOFError):
        raise DatasetRejected(422, f"Sheet '{sheet}' of '{filename}' is damaged and cannot be read.") from None
    return table
