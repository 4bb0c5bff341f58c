"""PubMed MEDLINE / .nbib read with the ``nbib`` package, one record at a time.

nbib handles the format itself (tags, 6-space continuation lines, CRLF, FAU/AU author blocks, AID ``[doi]``),
but it raises on the first tag value it does not expect (an ISSN without ``(Print)``, an odd date), which
would sink a whole file. So records are split on blank lines and parsed one by one (an unreadable record is
skipped with its reason), and tags litscreen does not use but nbib parses strictly (ISSNs, history dates) are
dropped before parsing. Records with only abbreviated ``AU`` authors get them as full names."""

from __future__ import annotations

import logging
import re
from typing import Any

import nbib

from app.importers import record_types
from app.importers.errors import ImportRejected
from app.importers.normalise import clean_list, make_record, parse_year, text_lines, unique
from app.importers.parsed import ParsedFile
from app.importers.sources import PUBMED

logger = logging.getLogger(__name__)

TAG = re.compile(r"^([A-Z]{2,4})\s*- ")
# Tags nbib parses with strict formats that litscreen does not need.
DROPPED_TAGS = frozenset({"IS", "DEP", "LR", "PHST", "PMC", "PMCR", "DCOM", "DA", "CRDT", "EDAT", "MHDA"})


def split_records(text: str) -> list[tuple[int, list[str]]]:
    """Blank-line separated records with their first line number."""
    records: list[tuple[int, list[str]]] = []
    current: list[str] = []
    start = 0
    for number, line in enumerate(text_lines(text), start=1):
        if not line.strip():
            if current:
                records.append((start, current))
                current = []
            continue
        if not current:
            start = number
        current.append(line.rstrip())
    if current:
        records.append((start, current))
    return records


def _prepare(lines: list[str]) -> list[str]:
    """Drop unused strict tags (with their continuation lines); map AU to FAU when FAU is absent."""
    has_full_names = any(line.startswith("FAU") for line in lines)
    kept: list[str] = []
    dropping = False
    for line in lines:
        match = TAG.match(line)
        if match:
            tag = match.group(1)
            dropping = tag in DROPPED_TAGS
            if tag == "AU" and not has_full_names:
                line = "FAU - " + line[TAG.match(line).end():]  # type: ignore[union-attr]
        if not dropping:
            kept.append(line)
    return kept


def reference_to_record(index: int, ref: dict[str, Any]) -> dict[str, Any]:
    """A normalised record from one nbib reference."""
    authors = [a.get("author") or a.get("author_abbreviated") for a in ref.get("authors") or []]
    if ref.get("corporate_author"):
        authors.append(ref["corporate_author"])
    mesh = [d.get("descriptor") for d in ref.get("descriptors") or []]
    keywords = [str(k).lstrip("*") for k in ref.get("keywords") or []]
    return make_record(
        index,
        title=ref.get("title") or ref.get("transliterated_title"),
        abstract=ref.get("abstract"),
        authors=clean_list(authors),
        year=parse_year(ref.get("publication_date")),
        journal=ref.get("journal") or ref.get("journal_abbreviated"),
        doi=ref.get("doi"),
        pmid=ref.get("pubmed_id"),
        keywords=unique([*keywords, *mesh]),
        source_id=ref.get("pubmed_id"),
        record_type=_record_type(ref.get("publication_types") or []),
        source_database=PUBMED,
    )


def _record_type(publication_types: list[str]) -> str:
    """MEDLINE publication types ("Journal Article", "Review", "Congress", "Preprint") → a record type; PubMed
    holds journal articles unless a type says otherwise."""
    for special in (record_types.CONFERENCE_PAPER, record_types.PREPRINT, record_types.BOOK_CHAPTER):
        if any(record_types.from_label(kind) == special for kind in publication_types):
            return special
    return record_types.JOURNAL_ARTICLE


def parse_medline(text: str) -> ParsedFile:
    """Parse MEDLINE text into normalised records."""
    parsed = ParsedFile(records=[], format="medline")
    chunks = [(start, lines) for start, lines in split_records(text) if any(TAG.match(line) for line in lines)]
    if not chunks:
        raise ImportRejected(422, "Malformed MEDLINE: no record found (expected lines like 'PMID- 12345678').")
    for index, (start, lines) in enumerate(chunks):
        try:
            references = nbib.read("\n".join(_prepare(lines)) + "\n")
            if len(references) != 1:
                raise ValueError(f"expected one record, read {len(references)}")
        except Exception as exc:  # noqa: BLE001 — nbib raises several kinds; one bad record must not sink the file
            logger.info("MEDLINE record at line %d skipped: %s", start, exc)
            parsed.skip(index, f"MEDLINE record at line {start} could not be read: {exc}")
            continue
        parsed.records.append(reference_to_record(index, references[0]))
    return parsed
