"""RIS (Scopus, Embase, Ovid, Zotero, EndNote …) read with rispy, after a structural pass that copes with real
exports: a UTF-8 BOM (stripped while decoding), Ovid's numbered ``1.`` lines between records, CRLF, and
repeated tags (Embase repeats SN). A record that starts before the previous one ended, or a file that stops
inside a record, is malformed: the whole file is rejected rather than records being merged or cut.

Identifiers live in different tags per database: the PubMed ID in ``AN`` (PubMed, EndNote from NLM), ``C2``
(Scopus), ``C3`` (Cochrane: ``PUBMED 123``) or a PubMed URL (litscreen's own export); the DOI in ``DO``, ``L3``
(EBSCOhost) or a DOI URL; the accession number in ``AN``, ``ID`` or EBSCOhost's ``N1 Accession Number: …``.
litscreen's own export carries the human label as the keyword ``litscreen:label:<include|exclude>``."""

from __future__ import annotations

import logging
import re
from typing import Any

import rispy

from app.importers import record_types
from app.importers.errors import ImportRejected
from app.importers.normalise import (
    clean_list,
    make_record,
    normalise_doi,
    normalise_label,
    normalise_pmid,
    parse_year,
    split_list,
    text_lines,
)
from app.importers.parsed import ParsedFile
from app.importers.sources import SOURCE_SEPARATOR, detect_source

logger = logging.getLogger(__name__)

TAG_LINE = re.compile(r"^([A-Z][A-Z0-9])  -(?: |$)")
DOI_URL = re.compile(r"doi\.org/|^10\.\d", re.IGNORECASE)
PUBMED_URL = re.compile(r"(?:pubmed\.ncbi\.nlm\.nih\.gov|ncbi\.nlm\.nih\.gov/pubmed)/(\d{1,12})\b", re.IGNORECASE)
COCHRANE_PUBMED = re.compile(r"\bPUBMED\s+(\d{1,12})\b", re.IGNORECASE)
SCOPUS_EID = re.compile(r"[?&]eid=(2-s2\.0-\d+)", re.IGNORECASE)
ACCESSION_NOTE = re.compile(r"Accession Number:\s*([^\s;]+)", re.IGNORECASE)
LABEL_KEYWORD = "litscreen:label:"
# Keywords litscreen's own RIS export adds (decisions and labels): not the record's own keywords.
EXPORT_KEYWORD_PREFIX = "litscreen:"


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


def _values(entry: dict[str, Any], *names: str) -> list[str]:
    """Every value of the named fields, in order (rispy gives a repeated single tag as a list)."""
    values: list[str] = []
    for name in names:
        value = entry.get(name)
        if isinstance(value, (list, tuple)):
            values.extend(str(v) for v in value if v)
        elif value:
            values.append(str(value))
    return values


def _first(entry: dict[str, Any], *names: str) -> Any:
    return next(iter(_values(entry, *names)), None)


def _unknown(entry: dict[str, Any], tag: str) -> list[str]:
    return list((entry.get("unknown_tag") or {}).get(tag, []))


def _databases(entry: dict[str, Any]) -> list[str]:
    return _values(entry, "name_of_database", "database_provider")


def _pmid(entry: dict[str, Any]) -> str | None:
    for url in _values(entry, "urls"):
        match = PUBMED_URL.search(url)
        if match:
            return match.group(1)
    for value in _values(entry, "custom3"):
        match = COCHRANE_PUBMED.search(value)
        if match:
            return match.group(1)
    database = " ".join(_databases(entry)).lower()
    if "scopus" in database:
        return normalise_pmid(_first(entry, "custom2"))  # Scopus puts the PubMed ID in C2
    if "pubmed" in database or "medline" in database or database.strip() == "nlm":
        return normalise_pmid(_first(entry, "accession_number"))
    return None


def _doi(entry: dict[str, Any]) -> str | None:
    for value in _values(entry, "doi"):
        doi = normalise_doi(value)
        if doi:
            return doi
    for value in [*_unknown(entry, "L3"), *_values(entry, "urls")]:
        if DOI_URL.search(value):
            doi = normalise_doi(value)
            if doi:
                return doi
    return None


def _accession(entry: dict[str, Any]) -> str | None:
    for note in _values(entry, "notes"):
        match = ACCESSION_NOTE.search(note)
        if match:
            return match.group(1)
    accession = _first(entry, "accession_number", "id") or next(iter(_unknown(entry, "U2")), None)
    if accession:
        return accession
    for url in _values(entry, "urls"):  # Scopus: the EID is only in the record's URL
        match = SCOPUS_EID.search(url)
        if match:
            return match.group(1)
    return None


def _keywords_and_label(entry: dict[str, Any]) -> tuple[list[str], str | None]:
    keywords, label = [], None
    for keyword in split_list(_values(entry, "keywords")):
        if keyword.lower().startswith(LABEL_KEYWORD):
            label, _ = normalise_label(keyword[len(LABEL_KEYWORD):])
        elif not keyword.lower().startswith(EXPORT_KEYWORD_PREFIX):
            keywords.append(keyword)
    return keywords, label


def entry_to_record(index: int, entry: dict[str, Any]) -> dict[str, Any]:
    """A normalised record from one rispy entry."""
    keywords, label = _keywords_and_label(entry)
    named = [part for value in _databases(entry) for part in value.split(SOURCE_SEPARATOR)]
    own_export = _is_export(entry)
    abstracts = _values(entry, "abstract") or _values(entry, "notes_abstract")
    source_id = _accession(entry)
    return make_record(
        index,
        title=_first(entry, "title", "primary_title"),
        # EBSCOhost splits the abstract over two AB lines (the second is the copyright notice)
        abstract=" ".join(abstracts) or None,
        authors=clean_list([*_values(entry, "authors"), *_values(entry, "first_authors")]),
        year=parse_year(_first(entry, "year"), _first(entry, "publication_year"), _first(entry, "date")),
        journal=_first(
            entry, "alternate_title3", "secondary_title", "journal_name", "alternate_title2", "alternate_title1"
        ),
        doi=_doi(entry),
        pmid=_pmid(entry),
        keywords=keywords,
        source_id=source_id,
        label=label,
        record_type=record_types.from_ris(_first(entry, "type_of_reference")),
        source_database=detect_source(named, [] if own_export else [source_id, *_values(entry, "urls",
                                                                                         "file_attachments2")]),
        # litscreen's export lists every database a record was found in ("DB  - Embase; PubMed") and only those
        source_databases=[detect_source([name]) for name in named] if own_export else [],
    )


def _is_export(entry: dict[str, Any]) -> bool:
    """Whether the entry comes from litscreen's own RIS export (its decision keyword)."""
    return any(k.lower().startswith(EXPORT_KEYWORD_PREFIX) for k in _values(entry, "keywords"))


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
