"""BibTeX read with bibtexparser v2 (LaTeX accents decoded, co-authors split).

Real exports need three corrections on top of the library:
- an unescaped ``%`` inside a field is text ("45% of patients"), but LaTeX decoding reads it as a comment and
  drops the rest of the line, so ``%`` is escaped before decoding;
- an entry that repeats a field (Scopus writes one ``funding_details`` per funder) is kept: the first value of
  each field is used (keyword lists are joined) and the import answer carries a warning;
- entries sharing a citation key are all read (dedup decides later).
A syntax error is a malformed file: rejected whole. Scopus BibTeX names itself in ``source = {Scopus}``."""

from __future__ import annotations

import logging
import re
from typing import Any

import bibtexparser
from bibtexparser import middlewares
from bibtexparser.library import Library
from bibtexparser.middlewares.middleware import BlockMiddleware, Middleware
from bibtexparser.model import DuplicateBlockKeyBlock, DuplicateFieldKeyBlock, Entry, Field, ParsingFailedBlock

from app.importers import record_types
from app.importers.errors import ImportRejected
from app.importers.limits import BudgetedLatexDecoding, LatexBudget
from app.importers.normalise import make_record, parse_year, split_authors, split_list
from app.importers.parsed import ParsedFile
from app.importers.sources import detect_source

logger = logging.getLogger(__name__)

UNESCAPED_PERCENT = re.compile(r"(?<!\\)%")
# Repeated fields whose values are joined rather than the first kept.
JOINED_FIELDS = frozenset({"keywords", "keyword", "author_keywords", "mesh"})


class EscapePercentMiddleware(BlockMiddleware):
    """Escape ``%`` in field values so LaTeX decoding keeps it as text instead of a comment."""

    def __init__(self) -> None:
        super().__init__(allow_inplace_modification=True)

    def transform_entry(self, entry: Entry, library: Library) -> Entry:
        for item in entry.fields:
            if isinstance(item.value, str) and "%" in item.value:
                item.value = UNESCAPED_PERCENT.sub(r"\\%", item.value)
        return entry


def _parse_stack(budget: LatexBudget | None = None) -> list[Middleware]:
    return [
        middlewares.ResolveStringReferencesMiddleware(allow_inplace_modification=True),
        middlewares.RemoveEnclosingMiddleware(allow_inplace_modification=True),
        EscapePercentMiddleware(),
        BudgetedLatexDecoding(budget),  # app/importers/limits.py: decode only markup, within a budget
        middlewares.SeparateCoAuthors(),
    ]


def _fields(entry: Entry) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for item in entry.fields:
        fields.setdefault(item.key.lower(), item.value)
    return fields


def _authors(value: Any) -> list[str]:
    """Authors from SeparateCoAuthors' list, or from a raw ``A and B`` string."""
    if isinstance(value, str):
        return split_authors(re.split(r"\s+and\s+", value))
    return split_authors(value)


def entry_to_record(index: int, entry: Entry) -> dict[str, Any]:
    """A normalised record from one bibtexparser entry."""
    fields = _fields(entry)
    pmid = fields.get("pmid")
    if not pmid and str(fields.get("eprinttype", "")).lower() == "pubmed":
        pmid = fields.get("eprint")
    return make_record(
        index,
        title=fields.get("title"),
        abstract=fields.get("abstract"),
        authors=_authors(fields.get("author")),
        year=parse_year(fields.get("year"), fields.get("date")),
        journal=fields.get("journal") or fields.get("journaltitle") or fields.get("booktitle"),
        doi=fields.get("doi"),
        pmid=pmid,
        keywords=split_list(fields.get("keywords") or fields.get("keyword") or fields.get("author_keywords"), ";,"),
        source_id=entry.key,
        record_type=record_types.from_label(fields.get("document_type"))
        or record_types.from_bibtex(entry.entry_type) or record_types.from_label(fields.get("type")),
        source_database=detect_source([fields.get("source")], [fields.get("url"), fields.get("note")]),
    )


def _merged_entry(block: DuplicateFieldKeyBlock) -> Entry:
    """The entry of a block that repeats fields, with one field per key, parsed like any other entry."""
    entry = block.ignore_error_block
    assert isinstance(entry, Entry)  # bibtexparser: a DuplicateFieldKeyBlock always wraps its entry
    merged: dict[str, Field] = {}
    for item in entry.fields:
        key = item.key.lower()
        if key not in merged:
            merged[key] = Field(item.key, item.value, item.start_line)
        elif key in JOINED_FIELDS:
            merged[key].value = "{" + _unbrace(merged[key].value) + "; " + _unbrace(item.value) + "}"
    library = Library(blocks=[Entry(entry.entry_type, entry.key, list(merged.values()), entry.start_line,
                                    entry.raw)])
    for middleware in _parse_stack():
        library = middleware.transform(library)
    return library.entries[0]


def _unbrace(value: Any) -> str:
    text = str(value).strip()
    if len(text) >= 2 and text[0] in "{\"" and text[-1] in "}\"":
        return text[1:-1]
    return text


def parse_bibtex(text: str) -> ParsedFile:
    """Parse BibTeX text into normalised records."""
    budget = LatexBudget()
    library = bibtexparser.parse_string(text, parse_stack=_parse_stack(budget))
    parsed = ParsedFile(records=[], format="bibtex")
    index = 0
    for block in library.blocks:
        if isinstance(block, ParsingFailedBlock) and not isinstance(
            block, (DuplicateFieldKeyBlock, DuplicateBlockKeyBlock)
        ):
            raise ImportRejected(
                422, f"Malformed BibTeX: the entry starting on line {(block.start_line or 0) + 1} cannot be parsed "
                f"({_first_line(block.error)})."
            )
        if isinstance(block, DuplicateFieldKeyBlock):
            key = getattr(block.ignore_error_block, "key", None) or "?"
            repeated = ", ".join(repr(name) for name in sorted(block.duplicate_keys))
            parsed.warnings.append(
                f"BibTeX entry '{key}' (line {(block.start_line or 0) + 1}) repeats {repeated}: imported with the "
                "first value of each field (keyword lists joined)."
            )
            block = _merged_entry(block)
        elif isinstance(block, DuplicateBlockKeyBlock):
            # bibtexparser leaves such blocks raw (no middleware ran): parse the entry on its own.
            reparsed = bibtexparser.parse_string(block.raw or "", parse_stack=_parse_stack(budget)).entries
            block = reparsed[0] if reparsed else (block.ignore_error_block or block)
        if isinstance(block, Entry):
            parsed.records.append(entry_to_record(index, block))
            index += 1
    note = budget.warning()
    if note:
        parsed.warnings.append(note)
    if index == 0:
        raise ImportRejected(422, "Malformed BibTeX: no entry found (expected entries like '@article{key, …}').")
    return parsed


def _first_line(error: object) -> str:
    text = str(error or "syntax error").strip().splitlines()
    return text[0] if text else "syntax error"
