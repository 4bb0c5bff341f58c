"""The health check of an uploaded table: a report a researcher can act on before paying for a run.

It holds counts, column names and 1-based file row numbers, never cell values (they may be patient text).
Issues have a ``severity`` (``error``: the data will not extract well as is; ``warning``: check it; ``info``)
and a stable ``code``: ``no_header``, ``duplicate_header``, ``empty_column``, ``near_empty_column``,
``duplicate_ids``, ``long_cells``, ``formula_cells``, ``merged_cells``, ``hidden_sheets``, ``mixed_types``,
``suspected_identifiers``, ``ragged_rows``, ``empty_rows_skipped``, ``encoding``.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from app.services.dc.reading import RawTable

logger = logging.getLogger(__name__)

NEAR_EMPTY_SHARE = 0.05
LONG_CELL_CHARS = 10_000
EXCEL_CELL_LIMIT = 32_767
MAX_ROWS_LISTED = 10
_ID_NAME = re.compile(r"(^|[^a-z])(id|ids|identifier|mrn|record|encounter|patient|subject)([^a-z]|$)",
                      re.IGNORECASE)
_NUMBER = re.compile(r"^[-+]?(\d+([.,]\d+)?|\.\d+)([eE][-+]?\d+)?%?$")
_FORMULA_LIKE = re.compile(r"^[=@]|^[+-][^\d\s.]|^[\t\r]")
_DATE = re.compile(r"^(\d{4}-\d{1,2}-\d{1,2}|\d{1,2}[/.-]\d{1,2}[/.-]\d{2,4})([ T]\d{1,2}:\d{2}(:\d{2})?)?$")
IDENTIFIER_PATTERNS: dict[str, re.Pattern[str]] = {
    "e-mail address": re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]+"),
    "phone number": re.compile(r"(?<![\w-])(\+\d{1,3}[ .-]?)?(\(\d{2,4}\)[ .-]?|\d{3}[ .-])\d{3}[ .-]\d{4}(?![\w-])"),
    "US social security number": re.compile(r"(?<![\w-])\d{3}-\d{2}-\d{4}(?![\w-])"),
    "NHS number": re.compile(r"(?<![\w-])\d{3} \d{3} \d{4}(?![\w-])"),
    "national id (letters and digits)": re.compile(r"(?<![\w-])[A-Z]{2}\d{6}[A-D](?![\w-])"),  # UK NI number
    "medical record number": re.compile(r"\b(MRN|medical record (number|no\.?))\s*[:#]?\s*\d{5,}",
                                        re.IGNORECASE),
}


# cheap tests that must pass before a pattern runs: most clinical text has none of these shapes, and the full
# patterns (look-behinds, character classes) cost 0.05-0.3 ms each on a 3 kB note. Digits are folded to "0"
# once (bytes.translate on the UTF-8 bytes), so each shape test is a C-speed substring search.
_DIGITS_TO_ZERO = bytes.maketrans(b"123456789", b"000000000")
_PREFILTERS: dict[str, Callable[[str, bytes], bool]] = {
    "e-mail address": lambda text, shape: "@" in text,
    "phone number": lambda text, shape: b"000 0" in shape or b"000-0" in shape or b"000.0" in shape,
    "US social security number": lambda text, shape: b"000-00-0000" in shape,
    "NHS number": lambda text, shape: b"000 000 0000" in shape,
    "national id (letters and digits)": lambda text, shape: b"000000" in shape,
    "medical record number": lambda text, shape: b"mrn" in shape.lower() or b"record" in shape.lower(),
}


def identifiers_in(text: str) -> list[str]:
    """Names of the identifier patterns found in ``text``."""
    shape = text.encode("utf-8", "replace").translate(_DIGITS_TO_ZERO)
    return [name for name, pattern in IDENTIFIER_PATTERNS.items()
            if _PREFILTERS[name](text, shape) and pattern.search(text)]


def cell_type(value: Any) -> str:
    """``empty``, ``number``, ``boolean``, ``date`` or ``string`` (strings that look like numbers or dates
    count as those: a CSV has only strings)."""
    if value is None:
        return "empty"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    text = str(value).strip()
    if not text:
        return "empty"
    if _NUMBER.match(text):
        return "number"
    if _DATE.match(text):
        return "date"
    return "string"


@dataclass
class Table:
    """A table with its header decided: column names, data rows as dicts, their file row numbers."""

    columns: list[str]
    rows: list[dict[str, Any]]
    row_numbers: list[int]
    header_detected: bool


def _looks_like_header(first: list[Any], rest: list[list[Any]]) -> bool:
    cells = [c for c in first if not (c is None or str(c).strip() == "")]
    if not cells or len(cells) < len(first) * 0.5:
        return False
    if any(cell_type(c) != "string" for c in cells):
        return False
    names = [str(c).strip().casefold() for c in cells]
    if len(set(names)) != len(names):
        return len(set(names)) >= len(names) * 0.8
    if not rest:
        return True
    # a header row is short text over columns whose data is not all text, or has long values
    sample = rest[:50]
    for index in range(len(first)):
        values = [r[index] for r in sample if index < len(r)]
        types = {cell_type(v) for v in values} - {"empty"}
        if types and types != {"string"}:
            return True
        longest = max((len(str(v)) for v in values), default=0)
        if longest > 3 * max(len(str(first[index] or "")), 1) and longest > 40:
            return True
    return all(len(str(c)) <= 64 for c in cells)


def build_table(raw: RawTable) -> Table:
    """Decide the header (first non-empty row, when it looks like one; else ``column_1``...) and key rows by it."""
    if not raw.rows:
        return Table([], [], [], False)
    width = max(len(r) for r in raw.rows)
    header_detected = _looks_like_header(raw.rows[0], raw.rows[1:])
    if header_detected:
        columns: list[str] = []
        for index in range(width):
            name = str(raw.rows[0][index]).strip() if index < len(raw.rows[0]) and raw.rows[0][index] is not None \
                else ""
            name = name or f"column_{index + 1}"
            base, n = name, 2
            while name in columns:
                name, n = f"{base}_{n}", n + 1
            columns.append(name)
        body, numbers = raw.rows[1:], raw.row_numbers[1:]
    else:
        columns = [f"column_{i + 1}" for i in range(width)]
        body, numbers = raw.rows, raw.row_numbers
    rows = [{c: (row[i] if i < len(row) else None) for i, c in enumerate(columns)} for row in body]
    return Table(columns, rows, list(numbers), header_detected)


def _issue(severity: str, code: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"severity": severity, "code": code, "message": message, **extra}


def id_column_candidates(table: Table) -> list[str]:
    """Columns whose name says they hold an identifier (or the first column when none does)."""
    named = [c for c in table.columns if _ID_NAME.search(c)]
    return named or table.columns[:1]


def _duplicates(table: Table, column: str) -> dict[str, Any] | None:
    seen: dict[str, int] = {}
    rows: list[int] = []
    count = 0
    for row, number in zip(table.rows, table.row_numbers, strict=True):
        value = row.get(column)
        if value is None or str(value).strip() == "":
            continue
        key = str(value).strip()
        if key in seen:
            count += 1
            if len(rows) < MAX_ROWS_LISTED:
                rows.append(number)
        else:
            seen[key] = number
    if not count:
        return None
    # a column with mostly repeated values is a category, not an identifier
    if len(seen) < 0.5 * (len(seen) + count):
        return None
    return _issue("error", "duplicate_ids", f"Column '{column}' looks like an identifier but {count} rows repeat "
                  "an earlier value.", column=column, count=count, rows=rows)


def health_report(raw: RawTable, table: Table, sha256: str) -> dict[str, Any]:
    """The report (see the module docstring); JSON-able."""
    issues: list[dict[str, Any]] = []
    columns_report: list[dict[str, Any]] = []
    n = len(table.rows)
    if not table.header_detected and table.rows:
        issues.append(_issue("warning", "no_header", "The first row does not look like a header; columns are named "
                             "column_1, column_2, ... Add a header row to name them."))
    for column in table.columns:
        types: Counter[str] = Counter()
        long_rows: list[int] = []
        long_count = over_limit = max_length = 0
        flagged: dict[str, list[int]] = {}
        flagged_count: Counter[str] = Counter()
        formula_like = 0
        for row, number in zip(table.rows, table.row_numbers, strict=True):
            value = row.get(column)
            kind = cell_type(value)
            types[kind] += 1
            if kind == "empty":
                continue
            text = str(value)
            max_length = max(max_length, len(text))
            if len(text) > LONG_CELL_CHARS:
                long_count += 1
                over_limit += len(text) > EXCEL_CELL_LIMIT
                if len(long_rows) < MAX_ROWS_LISTED:
                    long_rows.append(number)
            if kind == "string" and raw.file_format == "csv" and _FORMULA_LIKE.match(text):
                formula_like += 1
            if kind == "string":
                for name in identifiers_in(text):
                    flagged_count[name] += 1
                    if len(flagged.setdefault(name, [])) < MAX_ROWS_LISTED:
                        flagged[name].append(number)
        filled = n - types["empty"]
        present = {k: v for k, v in types.items() if k != "empty"}
        columns_report.append({"name": column, "non_empty": filled, "types": present, "max_length": max_length})
        if n and filled == 0:
            issues.append(_issue("warning", "empty_column", f"Column '{column}' is empty.", column=column))
        elif n and filled / n < NEAR_EMPTY_SHARE:
            issues.append(_issue("warning", "near_empty_column", f"Column '{column}' is filled in only {filled} of "
                                 f"{n} rows.", column=column, non_empty=filled))
        if len(present) > 1:
            main, main_count = max(present.items(), key=lambda kv: kv[1])
            others = {k: v for k, v in present.items() if k != main}
            issues.append(_issue("warning", "mixed_types", f"Column '{column}' mixes types: mostly {main} "
                                 f"({main_count}), also " + ", ".join(f"{k} ({v})" for k, v in others.items()) + ".",
                                 column=column, types=present))
        if long_count:
            message = f"Column '{column}' has {long_count} cells longer than {LONG_CELL_CHARS} characters"
            if over_limit:
                message += f" ({over_limit} over Excel's {EXCEL_CELL_LIMIT}-character cell limit: they will be cut " \
                           "if the file is saved from Excel)"
            issues.append(_issue("warning", "long_cells", message + ".", column=column, count=long_count,
                                 rows=long_rows))
        if formula_like:
            issues.append(_issue("warning", "formula_cells", f"Column '{column}' has {formula_like} cells starting "
                                 "with =, +, - or @: spreadsheet programs run them as formulas. They are kept as text "
                                 "and exported with a leading apostrophe.", column=column, count=formula_like))
        for name, count in flagged_count.items():
            issues.append(_issue("warning", "suspected_identifiers", f"Column '{column}' has {count} cells with what "
                                 f"looks like a {name}: check the data is de-identified before sending it to a model "
                                 "provider.", column=column, pattern=name, count=count, rows=flagged[name]))
    duplicate_checked = id_column_candidates(table)
    for column in duplicate_checked:
        found = _duplicates(table, column)
        if found:
            issues.append(found)
    issues += _file_issues(raw)
    return {
        "sha256": sha256,
        "file_format": raw.file_format,
        "encoding": raw.encoding,
        "delimiter": raw.delimiter,
        "sheet": raw.sheet,
        "sheets": raw.sheets,
        "rows": n,
        "columns": len(table.columns),
        "header_detected": table.header_detected,
        "column_names": table.columns,
        "id_column_candidates": duplicate_checked,
        "columns_report": columns_report,
        "issues": issues,
        "summary": {s: sum(1 for i in issues if i["severity"] == s) for s in ("error", "warning", "info")},
    }


def _file_issues(raw: RawTable) -> list[dict[str, Any]]:
    issues = []
    for warning in raw.warnings:
        issues.append(_issue("warning", "encoding", warning))
    if raw.ragged_rows:
        issues.append(_issue("error", "ragged_rows", f"{len(raw.ragged_rows)} rows have more cells than the header; "
                             "the extra cells are kept under column_N names.", rows=raw.ragged_rows[:MAX_ROWS_LISTED],
                             count=len(raw.ragged_rows)))
    if raw.empty_rows_skipped:
        issues.append(_issue("info", "empty_rows_skipped", f"{raw.empty_rows_skipped} empty rows were skipped.",
                             count=raw.empty_rows_skipped))
    if raw.formula_cells:
        issues.append(_issue("warning", "formula_cells", f"{raw.formula_cells} cells hold formulas; their last "
                             "computed values were read (recalculate in Excel first if in doubt).",
                             count=raw.formula_cells, cells=raw.formula_refs))
    if raw.merged_ranges:
        issues.append(_issue("warning", "merged_cells", f"{raw.merged_ranges} merged cell ranges: only the top-left "
                             "cell of each holds a value; unmerge and fill them.", count=raw.merged_ranges))
    hidden = [s["name"] for s in raw.sheets if not s["visible"]]
    if hidden:
        issues.append(_issue("warning", "hidden_sheets", f"The workbook has hidden sheets: {', '.join(hidden)}.",
                             sheets=hidden))
    return issues
