"""EndNote XML (``<xml><records><record>…``) read with ``defusedxml``: no DTDs, no entity expansion, no external
references, so a hostile file cannot make the parser fetch or expand anything.

Each value sits in ``<style>`` runs inside its element, so an element's text is all its text joined. Fields:
``ref-type@name`` record type, ``contributors/authors/author``, ``titles/title``, ``periodical/full-title`` (else
``titles/secondary-title``), ``dates/year``, ``abstract``, ``electronic-resource-num`` DOI, ``accession-num``
(the PubMed ID when the remote database is PubMed/NLM), ``remote-database-name``/``-provider`` source,
``keywords/keyword``."""

from __future__ import annotations

import io
import logging
import re
from typing import Any
from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import iterparse

from app.importers import record_types
from app.importers.errors import ImportRejected
from app.importers.normalise import clean_list, make_record, normalise_pmid, parse_year, split_list
from app.importers.parsed import ParsedFile
from app.importers.sources import PUBMED, detect_source

logger = logging.getLogger(__name__)

XML_DECLARATION = re.compile(r"^\s*<\?xml[^>]*\?>")
SIGNATURE = re.compile(r"<records>\s*<record>|<record>\s*<database\b|<ref-type\b")


def looks_like_endnote_xml(head: str) -> bool:
    """Whether the text looks like an EndNote XML export."""
    stripped = head.lstrip("\ufeff \t\r\n")
    return stripped.startswith("<") and bool(SIGNATURE.search(head))


def _text(element: Element | None) -> str | None:
    if element is None:
        return None
    text = " ".join("".join(element.itertext()).split())
    return text or None


def _texts(record: Element, path: str) -> list[str]:
    return clean_list(_text(element) for element in record.iterfind(path))


def record_from_xml(index: int, record: Element) -> dict[str, Any]:
    """A normalised record from one ``<record>`` element."""
    ref_type = record.find("ref-type")
    databases = [_text(record.find("remote-database-name")), _text(record.find("remote-database-provider"))]
    source_database = detect_source(databases, [_text(record.find("accession-num")),
                                                 *_texts(record, "urls/related-urls/url")])
    accession = _text(record.find("accession-num"))
    pmid = normalise_pmid(accession) if source_database == PUBMED else None
    return make_record(
        index,
        title=_text(record.find("titles/title")),
        abstract=_text(record.find("abstract")),
        authors=_texts(record, "contributors/authors/author"),
        year=parse_year(_text(record.find("dates/year")), _text(record.find("dates/pub-dates/date"))),
        journal=_text(record.find("periodical/full-title")) or _text(record.find("titles/secondary-title")),
        doi=_text(record.find("electronic-resource-num")),
        pmid=pmid,
        keywords=split_list(_texts(record, "keywords/keyword")),
        source_id=accession or _text(record.find("rec-number")),
        record_type=record_types.from_label(ref_type.get("name") if ref_type is not None else None),
        source_database=source_database,
    )


def parse_endnote_xml(text: str) -> ParsedFile:
    """Parse an EndNote XML export into normalised records, one ``<record>`` at a time (each element is
    emptied once read, so a large library never sits in memory as one tree)."""
    body = XML_DECLARATION.sub("", text.lstrip("\ufeff"), count=1)  # the text is decoded already: parse as UTF-8
    parsed = ParsedFile(records=[], format="endnote_xml")
    try:
        for _event, element in iterparse(io.BytesIO(body.encode("utf-8")), events=("end",), forbid_dtd=True):
            if element.tag == "record":
                parsed.records.append(record_from_xml(len(parsed.records), element))
                element.clear()  # an emptied element stays in <records>: ~100 bytes a record
    except DefusedXmlException as exc:
        raise ImportRejected(422, f"EndNote XML rejected: it declares a DTD or entities ({type(exc).__name__}); "
                                  "export the library again without them.") from exc
    except ParseError as exc:
        raise ImportRejected(422, f"Malformed EndNote XML: {exc}.") from exc
    if not parsed.records:
        raise ImportRejected(422, "Malformed EndNote XML: no <record> element found.")
    return parsed
