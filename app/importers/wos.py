"""Web of Science exports read with ``wosfile`` (BSD): plain text (``savedrecs.txt``: ``FN``/``VR`` header,
two-letter tags, ``ER`` after each record, ``EF`` at the end) and tab-delimited (one header row of the same
tags; Windows exports end every line with a spurious tab; UTF-8 or UTF-16 with a BOM, decoded before this).

Fields: ``AF`` full author names (else ``AU``), ``TI``, ``AB``, ``PY``, ``SO`` journal, ``DI`` DOI, ``PM``
PubMed ID, ``UT`` accession number (``WOS:…``), ``PT``/``DT`` record type, ``DE``/``ID`` keywords."""

from __future__ import annotations

import csv
import logging
import re
import warnings
from typing import Any

import wosfile

from app.importers import record_types
from app.importers.errors import ImportRejected
from app.importers.normalise import iter_lines, make_record, parse_year, split_authors, split_list
from app.importers.parsed import ParsedFile
from app.importers.sources import WEB_OF_SCIENCE

logger = logging.getLogger(__name__)

PLAIN_TEXT_START = re.compile(r"^\ufeff?FN [^\n]*\n\s*VR \d", re.MULTILINE)
TAB_HEADER = re.compile(r"^\ufeff?PT\t(?:[A-Z][A-Z0-9]\t)*", re.MULTILINE)
WOS_TYPES = {"J": record_types.JOURNAL_ARTICLE, "B": record_types.BOOK, "S": record_types.BOOK,
             "P": record_types.PATENT, "C": record_types.CONFERENCE_PAPER}


def looks_like_plain_text(head: str) -> bool:
    """Whether the text starts like a WoS plain-text export (``FN …`` then ``VR 1.0``)."""
    return bool(PLAIN_TEXT_START.match(head.lstrip("\ufeff")))


def looks_like_tab_delimited(head: str) -> bool:
    """Whether the first line is a WoS tab-delimited header (``PT<TAB>AU<TAB>…`` with ``TI`` and ``UT``)."""
    first = head.lstrip("\ufeff").split("\n", 1)[0].rstrip("\r")
    tags = first.split("\t")
    return bool(TAB_HEADER.match(first)) and "TI" in tags and "UT" in tags


def _record_type(record: dict[str, Any]) -> str | None:
    document_type = str(record.get("DT") or "")
    if re.search(r"book chapter", document_type, re.IGNORECASE):
        return record_types.BOOK_CHAPTER
    if re.match(r"\s*(proceedings paper|meeting abstract)", document_type, re.IGNORECASE):
        return record_types.CONFERENCE_PAPER
    return WOS_TYPES.get(str(record.get("PT") or "").strip().upper()) or record_types.from_label(document_type)


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [str(value)]


def record_from_wos(index: int, raw: dict[str, str]) -> dict[str, Any]:
    """A normalised record from one WoS field-code → value dict."""
    with warnings.catch_warnings():  # wosfile warns about tags it does not know (they are kept as text)
        warnings.simplefilter("ignore")
        record = wosfile.Record(raw)
    authors = _as_list(record.get("AF")) or _as_list(record.get("AU"))
    if record.get("CA"):
        authors.append(str(record["CA"]))
    return make_record(
        index,
        title=record.get("TI"),
        abstract=record.get("AB"),
        authors=split_authors(authors),
        year=parse_year(record.get("PY"), record.get("EA"), record.get("PD")),
        journal=record.get("SO") or record.get("SE"),
        doi=record.get("DI"),
        pmid=record.get("PM"),
        keywords=split_list([*_as_list(record.get("DE")), *_as_list(record.get("ID"))]),
        source_id=record.get("UT"),
        record_type=_record_type(record),
        source_database=WEB_OF_SCIENCE,
    )


def _read(reader_class: type, text: str, **kwargs: Any) -> list[dict[str, str]]:
    """Every record of the file, read from a lazy line iterator (io.StringIO would hold a second copy of the
    text at up to 4 bytes a character)."""
    lines = (line.rstrip("\r\n") + "\n" for line in iter_lines(text.lstrip("\ufeff")))
    try:
        return list(reader_class(lines, **kwargs))
    except (wosfile.ReadError, ValueError, csv.Error) as exc:
        raise ImportRejected(422, f"Malformed Web of Science export: {exc}.") from exc


def _parsed(raws: list[dict[str, str]], file_format: str) -> ParsedFile:
    parsed = ParsedFile(records=[], format=file_format)
    for index, raw in enumerate(raws):
        parsed.records.append(record_from_wos(index, raw))
    if not parsed.records:
        raise ImportRejected(422, "The Web of Science export holds no records.")
    return parsed


def parse_wos_plain_text(text: str) -> ParsedFile:
    """Parse a WoS plain-text export (``savedrecs.txt``)."""
    return _parsed(_read(wosfile.PlainTextReader, text), "wos")


def parse_wos_tab_delimited(text: str) -> ParsedFile:
    """Parse a WoS tab-delimited export (fields are never quoted)."""
    return _parsed(_read(wosfile.TabDelimitedReader, text, quoting=csv.QUOTE_NONE), "wos_tab")
