"""BibTeX read with bibtexparser v2 (LaTeX accents decoded, co-authors split).

An entry with a duplicated field is skipped with the reason and the rest of the file is imported; entries
sharing a citation key are all read (dedup decides later). A syntax error is a malformed file: rejected whole."""

from __future__ import annotations

import logging
import re
from typing import Any

import bibtexparser
from bibtexparser import middlewares
from bibtexparser.library import Library
from bibtexparser.model import DuplicateBlockKeyBlock, DuplicateFieldKeyBlock, Entry, ParsingFailedBlock

from app.importers.errors import ImportRejected
from app.importers.normalise import make_record, parse_year, split_authors, split_list
from app.importers.parsed import ParsedFile

logger = logging.getLogger(__name__)


def _fields(entry: Entry) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for item in entry.fields:
        fields.setdefault(item.key.lower(), item.value)
    return fields


def _authors(value: Any) -> list[str]:
    """Authors from SeparateCoAuthors' list, or from a raw ``A and B`` string (blocks middleware skipped)."""
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
        keywords=split_list(fields.get("keywords") or fields.get("keyword"), ";,"),
        source_id=entry.key,
    )


def _parse(text: str) -> Library:
    return bibtexparser.parse_string(
        text,
        append_middleware=[middlewares.LatexDecodingMiddleware(), middlewares.SeparateCoAuthors()],
    )


def parse_bibtex(text: str) -> ParsedFile:
    """Parse BibTeX text into normalised records."""
    library = _parse(text)
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
            fields = sorted(block.duplicate_keys) if hasattr(block, "duplicate_keys") else []
            what = ", ".join(repr(f) for f in fields) or "a field"
            parsed.skip(index, f"BibTeX entry '{key}' (line {(block.start_line or 0) + 1}) repeats {what}; "
                        "fix the entry and import it again.")
            index += 1
            continue
        entry: object = block
        if isinstance(block, DuplicateBlockKeyBlock):
            # bibtexparser leaves such blocks raw (no middleware ran): parse the entry on its own.
            entry = next(iter(_parse(block.raw or "").entries), block.ignore_error_block)
        if isinstance(entry, Entry):
            parsed.records.append(entry_to_record(index, entry))
            index += 1
    if index == 0:
        raise ImportRejected(422, "Malformed BibTeX: no entry found (expected entries like '@article{key, …}').")
    return parsed


def _first_line(error: object) -> str:
    text = str(error or "syntax error").strip().splitlines()
    return text[0] if text else "syntax error"
