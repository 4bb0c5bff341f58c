"""Which bibliographic database a record came from (for PRISMA's per-database counts and for joining exports
back): recognised from the database names, providers, accession numbers and URLs an export carries.

``detect_source(named, hints)``: ``named`` are the values of a database field (RIS ``DB``/``DP``, CSV
"Database Name"/"Source", EndNote's remote database); ``hints`` are accession numbers and URLs. A recognised
name wins; an unrecognised database name is kept as written (``PTSDpubs``); else the hints decide; else None."""

from __future__ import annotations

import re
from collections.abc import Iterable

SCOPUS = "Scopus"
WEB_OF_SCIENCE = "Web of Science"
PUBMED = "PubMed"
MEDLINE = "MEDLINE"
EMBASE = "Embase"
CINAHL = "CINAHL"
PSYCINFO = "PsycINFO"
CENTRAL = "CENTRAL"
IEEE_XPLORE = "IEEE Xplore"
ACADEMIC_SEARCH = "Academic Search Premier"
PROQUEST = "ProQuest"
# How litscreen's exports list the several databases a record was found in ("Embase; PubMed").
SOURCE_SEPARATOR = "; "

# (name, pattern) in the order tried; patterns cover names, vendor codes (Ovid ``D=psyc16``, EBSCOhost
# ``db=aph``) and URLs.
_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (name, re.compile(pattern, re.IGNORECASE))
    for name, pattern in (
        (CENTRAL, r"cochrane|\bcentral\b|^CN-\d|/central/"),
        (EMBASE, r"embase|\bD=em(ed|ez|b)\w*"),
        (SCOPUS, r"scopus"),
        (WEB_OF_SCIENCE, r"web of science|webofscience|webofknowledge|web of knowledge|\bisi\b|^WOS:|//WOS:"),
        (CINAHL, r"cinahl|^(cin20|ccm|rzh)$|\bdb=(cin20|ccm|rzh)\b"),
        (PSYCINFO, r"psyc ?info|^psyh$|\bdb=psyh\b|\bD=psyc\w*"),
        (PUBMED, r"pubmed|^nlm$|ncbi\.nlm\.nih\.gov"),
        (MEDLINE, r"medline|^(mdc|cmedm)$|\bdb=(mdc|cmedm)\b|\bD=(medl|prem|mesz)\w*"),
        (IEEE_XPLORE, r"ieee ?xplore|ieeexplore"),
        (ACADEMIC_SEARCH, r"academic search|^aph$|\bdb=aph\b"),
        (PROQUEST, r"proquest"),
    )
)


def recognise(value: str | None) -> str | None:
    """The canonical database name ``value`` refers to, or None."""
    text = (value or "").strip()
    if not text:
        return None
    for name, pattern in _PATTERNS:
        if pattern.search(text):
            return name
    return None


def detect_source(named: Iterable[str | None] = (), hints: Iterable[str | None] = ()) -> str | None:
    """The database a record came from (see the module docstring for the order of evidence)."""
    names = [value.strip() for value in named if value and value.strip()]
    for name in names:
        if recognise(name):
            return recognise(name)
    if names:
        return names[0]
    for hint in hints:
        if recognise(hint):
            return recognise(hint)
    return None
