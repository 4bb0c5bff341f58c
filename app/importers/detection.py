"""Which export format a file holds, from its name and its content."""

from __future__ import annotations

import re
from pathlib import PurePath

from app.importers.errors import ImportRejected

RIS = "ris"
MEDLINE = "medline"
BIBTEX = "bibtex"
CSV = "csv"
WOS = "wos"
WOS_TAB = "wos_tab"
ENDNOTE_XML = "endnote_xml"
FILE_FORMATS = (RIS, MEDLINE, BIBTEX, CSV, WOS, WOS_TAB, ENDNOTE_XML)
# Content checks in this order: the WoS formats before CSV (a WoS tab-delimited header is also a TSV header
# with a "TI" column) and before MEDLINE (whose "TI  - " signature a WoS file lacks, but be safe).
CONTENT_ORDER = (WOS, WOS_TAB, ENDNOTE_XML, RIS, MEDLINE, BIBTEX, CSV)

EXTENSIONS = {
    ".ris": RIS,
    ".nbib": MEDLINE,
    ".medline": MEDLINE,
    ".bib": BIBTEX,
    ".bibtex": BIBTEX,
    ".csv": CSV,
    ".tsv": CSV,
    ".xml": ENDNOTE_XML,
}
SNIFF_CHARS = 65536

_RIS_START = re.compile(r"^\ufeff?TY  -", re.MULTILINE)
_MEDLINE_PMID = re.compile(r"^PMID- ?\d", re.MULTILINE)
_MEDLINE_TITLE = re.compile(r"^TI  - \S", re.MULTILINE)
_MEDLINE_ONLY_TAG = re.compile(r"^(FAU|DP  |JT  |SO  |LID|PT  ) ?- ", re.MULTILINE)
_BIBTEX_ENTRY = re.compile(r"^\s*@\s*[A-Za-z]+\s*[{(]", re.MULTILINE)


def looks_like(file_format: str, head: str) -> bool:
    """Whether the start of a file has the signature of ``file_format``."""
    if file_format == RIS:
        return bool(_RIS_START.search(head))
    if file_format == MEDLINE:
        return bool(_MEDLINE_PMID.search(head)) or (
            bool(_MEDLINE_TITLE.search(head)) and bool(_MEDLINE_ONLY_TAG.search(head))
        )
    if file_format == BIBTEX:
        return bool(_BIBTEX_ENTRY.search(head))
    if file_format == CSV:
        from app.importers.csv_records import has_title_header

        return has_title_header(head)
    if file_format == WOS:
        from app.importers.wos import looks_like_plain_text

        return looks_like_plain_text(head)
    if file_format == WOS_TAB:
        from app.importers.wos import looks_like_tab_delimited

        return looks_like_tab_delimited(head)
    if file_format == ENDNOTE_XML:
        from app.importers.endnote_xml import looks_like_endnote_xml

        return looks_like_endnote_xml(head)
    return False


def detect_format(filename: str, text: str) -> str:
    """The format of an export: the one its extension names if the content agrees, else the one the content
    shows, else the extension's (its parser then reports what is wrong); 415 when neither tells."""
    by_name = EXTENSIONS.get(PurePath(filename or "").suffix.lower())
    head = text[:SNIFF_CHARS]
    if by_name and by_name != CSV and looks_like(by_name, head):
        return by_name
    for candidate in CONTENT_ORDER:
        if candidate != by_name and looks_like(candidate, head):
            return candidate
    if by_name:
        return by_name
    raise ImportRejected(
        415,
        f"Unrecognised file format for '{filename}': expected RIS (.ris), PubMed MEDLINE (.nbib/.txt), "
        "BibTeX (.bib), CSV (.csv) with a title column, Web of Science plain text or tab-delimited "
        "(savedrecs.txt) or EndNote XML (.xml).",
    )
