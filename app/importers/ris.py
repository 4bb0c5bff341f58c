"""RIS (Scopus, Embase, Ovid, Zotero, EndNote …) read with rispy, after a structural pass that copes with real
exports: a UTF-8 BOM (stripped while decoding), Ovid's numbered ``1.`` lines between records, CRLF, and
repeated tags (Embase repeats SN). A record that starts before the previous one ended, or a file that stops
inside a record, is malformed: the whole file is rejected rather than records being merged or cut."""

from __future__ import annotations

import logging
import re
from typing import Any

import rispy

from app.importers.errors import ImportRejected
from app.importers.normalise import make_record, normalise_doi, parse_year, split_list, text_lines, unique
from app.importers.parsed import ParsedFile

logger = logging.getLogger(__name__)

TAG_LINE = re.compile(r"^([A-Z][A-Z0-9])  -(?: |$)")
DOI_URL = re.compile(r"doi\.org/|^10\.\d", re.IGNORECASE)


def split_records(text: str) -> list[tuple[int, list[str]]]:
    """The lines of each TY … ER record with its starting line number; ImportRejected if malformed."""
    records: list[tuple[int, list[str]]] = []
    current: list[str] | None = None
    start = 0
    for number, line in enumerate(text_lines(text), start=1):
        line = line.lstrip("\ufeff")  # a BOM inside concatenated exports
        match = TAG_LINE.match(line)
        tag = match.group(1) if match else None
        if current is None:
            if tag == "TY":
                current, start = [line], number
            # Outside a record: blank lines, Ovid's "1." counters and trailing tags (NL after ER), a stray ER
            # or header text are ignored.
            continue
        if tag == "TY":
            raise ImportRejected(
                422,
                f"Malformed RIS: line {number} starts a new record (TY) before the record that began on "
                f"line {start} was closed with 'ER  -'.",
            )
        current.append(line)
        if tag == "ER":
            records.append((start, current))
            current = None
    if current is not None:
        raise ImportRejected(
            422,
            f"Malformed RIS: the record that begins on line {start} has no end tag 'ER  -' "
            "(is the file truncated?).",
        )
    if not records:
        raise ImportRejected(
            422, "Malformed RIS: no record found (each record runs from a 'TY  - ' line to an 'ER  - ' line)."
        )
    return records


def _first(entry: dict[str, Any], *names: str) -> Any:
    for name in names:
        value = entry.get(name)
        if value:
            return value
    return None


def _unknown(entry: dict[str, Any], tag: str) -> list[str]:
    return list((entry.get("unknown_tag") or {}).get(tag, []))


def _pmid(entry: dict[str, Any]) -> str | None:
    database = " ".join(unique([entry.get("name_of_database"), entry.get("database_provider")])).lower()
    if "scopus" in database:
        return entry.get("custom2")  # Scopus puts the PubMed ID in C2
    if "pubmed" in database or "medline" in database:
        return entry.get("accession_number")
    return None


def _doi(entry: dict[str, Any]) -> str | None:
    doi = normalise_doi(entry.get("doi"))
    if doi:
        return doi
    for url in entry.get("urls") or []:
        if DOI_URL.search(url):
            return normalise_doi(url)
    return None


def entry_to_record(index: int, entry: dict[str, Any]) -> dict[str, Any]:
    """A normalised record from one rispy entry."""
    return make_record(
        index,
        title=_first(entry, "title", "primary_title"),
        abstract=_first(entry, "abstract", "notes_abstract"),
        authors=unique([*(entry.get("authors") or []), *(entry.get("first_authors") or [])]),
        year=parse_year(entry.get("year"), entry.get("publication_year"), entry.get("date")),
        journal=_first(
            entry, "alternate_title3", "secondary_title", "journal_name", "alternate_title2", "alternate_title1"
        ),
        doi=_doi(entry),
        pmid=_pmid(entry),
        keywords=split_list(entry.get("keywords") or []),
        source_id=_first(entry, "id", "accession_number") or next(iter(_unknown(entry, "U2")), None),
    )


def parse_ris(text: str) -> ParsedFile:
    """Parse RIS text into normalised records (records rispy cannot read are skipped with the reason)."""
    parsed = ParsedFile(records=[], format="ris")
    for index, (start, lines) in enumerate(split_records(text)):
        try:
            entries = rispy.loads("\n".join(lines), enforce_list_tags=False)
            if len(entries) != 1:
                raise ValueError(f"expected one record, read {len(entries)}")
        except Exception as exc:  # noqa: BLE001 — one unreadable record must not sink the file
            logger.info("RIS record at line %d skipped: %s", start, exc)
            parsed.skip(index, f"RIS record at line {start} could not be read: {exc}")
            continue
        parsed.records.append(entry_to_record(index, entries[0]))
    return parsed
