"""Import guards: what any import may hold, checked before a parser sees the text and again on parsed records.

Parsers are not linear in their input for every shape of it (rispy joins each continuation line onto the whole
value so far; pylatexenc's LaTeX decoding grows faster than the value), so the raw text is checked and
reshaped first, in one linear pass:

- a NUL character anywhere (after decoding, so UTF-16 files too) rejects the file (422, naming the line);
- a line longer than ``MAX_IMPORT_LINE_CHARS`` rejects the file (422, naming the line) — no real export
  writes a line that long;
- RIS continuation lines of single-value tags are folded onto their tag line (what rispy does, in linear time).

Parsed records (files and JSON alike) then obey ``FIELD_LIMITS``: a file's over-long field is truncated with a
warning in the import result (the JSON schema rejects the same values with a 422 instead, since a client can
fix them). BibTeX's LaTeX decoding gets a budget per file (``LATEX_DECODE_BUDGET_CHARS``): values beyond it are
kept as written, with a warning."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from typing import Any

from bibtexparser.middlewares import LatexDecodingMiddleware
from rispy.parser import RisParser

from app.importers.errors import ImportRejected

logger = logging.getLogger(__name__)

DEFAULT_MAX_LINE_CHARS = 1_000_000
LATEX_DECODE_BUDGET_CHARS = 500_000
LATEX_DECODE_MAX_FIELD_CHARS = 20_000

# One table for every import path (the JSON schema's Length validators read it too).
FIELD_LIMITS: dict[str, int] = {
    "title": 10_000,
    "abstract": 200_000,
    "journal": 2_000,
    "doi": 255,
    "source_id": 255,
}
LIST_ITEM_LIMIT = 1_000  # characters per author / keyword
LIST_LENGTH_LIMIT = 5_000  # authors / keywords per record
MAX_FIELD_CHARS = max(FIELD_LIMITS.values())

# rispy's single-value tags: a continuation line extends the value (rispy re-joins the whole value per line).
_RIS_LIST_TAGS = frozenset(RisParser.DEFAULT_LIST_TAGS) | frozenset(RisParser.DEFAULT_DELIMITER_MAPPING)
_RIS_KNOWN_TAGS = frozenset(RisParser.DEFAULT_MAPPING)
_RIS_TAG = re.compile(r"^([A-Z][A-Z0-9])  -(?: |$)")
# pylatexenc changes a value only when it holds one of these (commands, groups, math, comments, ligatures).
LATEX_MARKUP = re.compile(r"[\\{}$~%&#^_]|--|''|``|!`|\?`")


def _line_number(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def check_text(text: str, filename: str, max_line_chars: int = DEFAULT_MAX_LINE_CHARS) -> None:
    """ImportRejected (422) for a NUL character or a line over ``max_line_chars``; linear in the text."""
    nul = text.find("\x00")
    if nul >= 0:
        raise ImportRejected(
            422, f"The uploaded file '{filename}' holds a NUL character (U+0000) on line {_line_number(text, nul)}: "
            "it is binary data or a damaged export, not a text export.",
        )
    start = 0
    number = 1
    length = len(text)
    while start <= length:
        end = text.find("\n", start)
        if end < 0:
            end = length
        if end - start > max_line_chars:
            raise ImportRejected(
                422, f"Line {number} of '{filename}' is {end - start} characters long; the limit is "
                f"{max_line_chars} (MAX_IMPORT_LINE_CHARS). The file is not a bibliographic export, or is damaged.",
            )
        start = end + 1
        number += 1


def fold_ris_continuations(text: str) -> str:
    """RIS text with continuation lines of single-value tags joined onto their tag line (same value as rispy's
    own join, in linear time). Lines of list tags, unknown tags and outside records are left as they are."""
    out: list[str] = []
    pending: list[str] = []  # the current single-value tag line and its continuation parts

    def flush() -> None:
        if pending:
            out.append(" ".join(pending))
            pending.clear()

    for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        match = _RIS_TAG.match(line.lstrip("\ufeff"))
        if match:
            flush()
            tag = match.group(1)
            if tag in _RIS_KNOWN_TAGS and tag not in _RIS_LIST_TAGS and tag not in ("TY", "ER"):
                pending.append(line.rstrip())
            else:
                out.append(line)
        elif pending and line.strip():
            pending.append(line.strip())
        else:
            flush()
            out.append(line)
    flush()
    return "\n".join(out)


def _truncate(value: str, limit: int) -> str:
    return value[:limit].rstrip()


def limit_record(record: dict[str, Any], warnings: list[str], where: str) -> dict[str, Any]:
    """Truncate the fields of one parsed record to FIELD_LIMITS (in place), with a warning per field cut."""
    for name, limit in FIELD_LIMITS.items():
        value = record.get(name)
        if isinstance(value, str) and len(value) > limit:
            record[name] = _truncate(value, limit)
            warnings.append(f"{where}: {name} truncated from {len(value)} to {limit} characters.")
    for name in ("authors", "keywords"):
        items = record.get(name)
        if not items:
            continue
        kept = [item[:LIST_ITEM_LIMIT] for item in items[:LIST_LENGTH_LIMIT]]
        if len(items) > LIST_LENGTH_LIMIT:
            warnings.append(f"{where}: only the first {LIST_LENGTH_LIMIT} of {len(items)} {name} were kept.")
        if any(len(item) > LIST_ITEM_LIMIT for item in items[:LIST_LENGTH_LIMIT]):
            warnings.append(f"{where}: {name} longer than {LIST_ITEM_LIMIT} characters were truncated.")
        record[name] = kept
    return record


def limit_records(records: Iterable[dict[str, Any]], warnings: list[str]) -> None:
    """Apply ``limit_record`` to every parsed record of a file (the record's file index names it)."""
    for position, record in enumerate(records):
        limit_record(record, warnings, f"record {record.get('index', position)}")


class LatexBudget:
    """How much LaTeX decoding one file may still spend; values over it (or over a per-field size) stay raw."""

    def __init__(self, total: int = LATEX_DECODE_BUDGET_CHARS, per_field: int = LATEX_DECODE_MAX_FIELD_CHARS):
        self.remaining = total
        self.per_field = per_field
        self.skipped = 0

    def allows(self, value: str) -> bool:
        """Whether ``value`` should go through the LaTeX decoder (it has markup and fits the budget)."""
        if not LATEX_MARKUP.search(value):
            return False
        if len(value) > self.per_field or len(value) > self.remaining:
            self.skipped += 1
            return False
        self.remaining -= len(value)
        return True

    def warning(self) -> str | None:
        """The note for the import result when some values were left undecoded."""
        if not self.skipped:
            return None
        return (f"LaTeX markup in {self.skipped} BibTeX field(s) was kept as written: the field or the file is "
                "over the decoding budget.")


class BudgetedLatexDecoding(LatexDecodingMiddleware):
    """bibtexparser's LaTeX decoding, only for values with LaTeX markup and within a ``LatexBudget``."""

    def __init__(self, budget: LatexBudget | None = None) -> None:
        super().__init__()
        self.budget = budget or LatexBudget()

    def _transform_python_value_string(self, python_string: str) -> tuple[str, str]:
        if not self.budget.allows(python_string):
            return python_string, ""
        return super()._transform_python_value_string(python_string)
