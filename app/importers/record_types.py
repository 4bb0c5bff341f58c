"""Record types (journal article, conference paper, book chapter, …): one vocabulary for every format, read from
RIS ``TY`` codes, BibTeX entry types and the free-text document types of MEDLINE, Web of Science, Scopus,
EndNote and CSV exports, and written back as the matching RIS ``TY``.

``None`` means generic / not stated (RIS ``GEN``), so a record without a type round-trips as one."""

from __future__ import annotations

import re

JOURNAL_ARTICLE = "journal_article"
CONFERENCE_PAPER = "conference_paper"
BOOK = "book"
BOOK_CHAPTER = "book_chapter"
THESIS = "thesis"
REPORT = "report"
PREPRINT = "preprint"
DATASET = "dataset"
WEBPAGE = "webpage"
PATENT = "patent"
RECORD_TYPES = (
    JOURNAL_ARTICLE, CONFERENCE_PAPER, BOOK, BOOK_CHAPTER, THESIS, REPORT, PREPRINT, DATASET, WEBPAGE, PATENT,
)

# RIS type of reference → record type (RIS 2011 specification codes; GEN and unknown codes → None).
RIS_TYPES: dict[str, str] = {
    **dict.fromkeys(("JOUR", "JFULL", "EJOUR", "MGZN", "NEWS", "ABST", "INPR", "SER"), JOURNAL_ARTICLE),
    **dict.fromkeys(("CONF", "CPAPER"), CONFERENCE_PAPER),
    **dict.fromkeys(("BOOK", "EBOOK", "EDBOOK"), BOOK),
    **dict.fromkeys(("CHAP", "ECHAP"), BOOK_CHAPTER),
    "THES": THESIS,
    **dict.fromkeys(("RPRT", "GOVDOC", "STAND"), REPORT),
    "UNPB": PREPRINT,
    **dict.fromkeys(("DATA", "DBASE", "AGGR"), DATASET),
    **dict.fromkeys(("ELEC", "WEB", "BLOG"), WEBPAGE),
    "PAT": PATENT,
}
# Record type → the RIS code an export writes (the first code of each type above).
RIS_CODE: dict[str, str] = {
    JOURNAL_ARTICLE: "JOUR", CONFERENCE_PAPER: "CPAPER", BOOK: "BOOK", BOOK_CHAPTER: "CHAP", THESIS: "THES",
    REPORT: "RPRT", PREPRINT: "UNPB", DATASET: "DATA", WEBPAGE: "ELEC", PATENT: "PAT",
}
GENERIC_RIS_CODE = "GEN"

BIBTEX_TYPES: dict[str, str] = {
    "article": JOURNAL_ARTICLE,
    **dict.fromkeys(("inproceedings", "conference", "proceedings"), CONFERENCE_PAPER),
    **dict.fromkeys(("book", "mvbook", "booklet"), BOOK),
    **dict.fromkeys(("incollection", "inbook", "inreference"), BOOK_CHAPTER),
    **dict.fromkeys(("phdthesis", "mastersthesis", "thesis"), THESIS),
    **dict.fromkeys(("techreport", "report"), REPORT),
    "unpublished": PREPRINT,
    "dataset": DATASET,
    **dict.fromkeys(("online", "electronic", "www"), WEBPAGE),
    "patent": PATENT,
}

# Free-text document types ("Journal Article", "Conference Paper", "Book Section", "Proceedings Paper", …), in
# the order they are tried: the first pattern that matches decides.
_LABEL_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), record_type)
    for pattern, record_type in (
        (r"book (section|chapter)|\bchapter\b|incollection|inbook", BOOK_CHAPTER),
        (r"conference|proceeding|congress|meeting|symposium|inproceedings", CONFERENCE_PAPER),
        (r"preprint", PREPRINT),
        (r"thesis|dissertation", THESIS),
        (r"\bdata ?set\b", DATASET),
        (r"patent", PATENT),
        (r"web ?page|web site|website|\bblog\b", WEBPAGE),
        ((r"journal|magazine|article|review|letter|editorial|erratum|comment|note\b|case report|trial|study|"
          r"survey|meta-analysis|electronic article"), JOURNAL_ARTICLE),
        (r"\bbooks?\b|monograph", BOOK),
        (r"report|standard|government", REPORT),
    )
)


def from_ris(code: str | None) -> str | None:
    """The record type of a RIS ``TY`` code (None for GEN and unknown codes)."""
    return RIS_TYPES.get((code or "").strip().upper())


def from_bibtex(entry_type: str | None) -> str | None:
    """The record type of a BibTeX entry type (``article``, ``inproceedings``, …)."""
    return BIBTEX_TYPES.get((entry_type or "").strip().lower())


def from_label(*labels: str | None) -> str | None:
    """The record type named by the first free-text document type that says one."""
    for label in labels:
        text = (label or "").replace("_", " ").strip()  # "book_chapter" (litscreen's own export) too
        if not text:
            continue
        for pattern, record_type in _LABEL_PATTERNS:
            if pattern.search(text):
                return record_type
    return None


def ris_code(record_type: str | None) -> str:
    """The RIS ``TY`` an export writes for ``record_type`` (``GEN`` when not stated)."""
    return RIS_CODE.get(record_type or "", GENERIC_RIS_CODE)
