"""Bibliographic export files → normalised records: format detection and one parser per format.

``parse_file(filename, data)`` decodes the bytes, detects the format from the name and the content and returns
a ParsedFile; anything it cannot take raises ImportRejected with the HTTP status and a message for the user."""

from __future__ import annotations

import logging

from app.importers.bibtex import parse_bibtex
from app.importers.csv_records import parse_csv
from app.importers.decoding import decode_upload
from app.importers.detection import (
    BIBTEX,
    CSV,
    ENDNOTE_XML,
    FILE_FORMATS,
    MEDLINE,
    RIS,
    WOS,
    WOS_TAB,
    detect_format,
)
from app.importers.endnote_xml import parse_endnote_xml
from app.importers.errors import ImportRejected
from app.importers.medline import parse_medline
from app.importers.parsed import ParsedFile
from app.importers.ris import parse_ris
from app.importers.wos import parse_wos_plain_text, parse_wos_tab_delimited

logger = logging.getLogger(__name__)

PARSERS = {
    RIS: parse_ris, MEDLINE: parse_medline, BIBTEX: parse_bibtex, CSV: parse_csv, WOS: parse_wos_plain_text,
    WOS_TAB: parse_wos_tab_delimited, ENDNOTE_XML: parse_endnote_xml,
}

__all__ = ["FILE_FORMATS", "ImportRejected", "ParsedFile", "detect_format", "parse_file", "parse_text"]


def parse_text(filename: str, text: str) -> ParsedFile:
    """Parse already-decoded text of an export named ``filename``."""
    file_format = detect_format(filename, text)
    return PARSERS[file_format](text)


def parse_file(filename: str, data: bytes) -> ParsedFile:
    """Parse an uploaded export file (RIS, MEDLINE/.nbib, BibTeX, CSV, Web of Science, EndNote XML) into
    normalised records."""
    decoded = decode_upload(data, filename)
    parsed = parse_text(filename, decoded.text)
    parsed.encoding = decoded.encoding
    parsed.warnings[:0] = decoded.warnings
    logger.info(
        "parsed %s as %s (%s): %d records, %d skipped", filename, parsed.format, parsed.encoding,
        len(parsed.records), len(parsed.skipped),
    )
    return parsed
