"""Field normalisation shared by every parser: DOI, PMID, year, authors, labels, the per-project dedup key and
every key a record can be matched on (``match_keys``). Author lists keep their order and their repeats: two
people may be written ``Li Y.``."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable, Iterator
from typing import Any

DOI_PATTERN = re.compile(r"10\.\d{4,9}/\S+", re.IGNORECASE)
YEAR_PATTERN = re.compile(r"(?<!\d)(1[5-9]\d\d|20\d\d|2100)(?!\d)")
PMID_PATTERN = re.compile(r"^\s*(?:(?:pmid|pubmed)(?: id)?:?\s*)?(\d{1,12})\s*$", re.IGNORECASE)
MAX_DOI_LENGTH = 255
MAX_SOURCE_ID_LENGTH = 255
MAX_DEDUP_KEY_LENGTH = 600

INCLUDE_LABELS = {"1", "1.0", "include", "included", "yes", "y", "true", "relevant", "i"}
EXCLUDE_LABELS = {"0", "0.0", "exclude", "excluded", "no", "n", "false", "irrelevant", "e"}

# The fields of a normalised record (the Literature columns an import fills).
RECORD_FIELDS = (
    "title", "abstract", "authors", "year", "journal", "doi", "pmid", "keywords", "source_id", "label",
    "record_type", "source_database",
)
MAX_SOURCE_DATABASE_LENGTH = 200


def text_lines(text: str) -> list[str]:
    """Lines split on LF, CRLF or CR only (``str.splitlines`` would also split inside a value at U+2028 etc.)."""
    return text.replace("\r\n", "\n").replace("\r", "\n").split("\n")


def iter_lines(text: str) -> Iterator[str]:
    """Lines with their endings, lazily (io.StringIO would hold a 4-bytes-per-character copy of the file)."""
    if "\n" not in text:
        text = text.replace("\r", "\n")  # classic Mac line endings
    start, length = 0, len(text)
    while start < length:
        end = text.find("\n", start)
        if end == -1:
            yield text[start:]
            return
        yield text[start:end + 1]
        start = end + 1


def clean_text(value: Any) -> str | None:
    """Collapse whitespace; None for empty values. Lists are joined with a space."""
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        value = " ".join(str(part) for part in value if part is not None)
    text = " ".join(str(value).split())
    return text or None


def normalise_doi(value: Any) -> str | None:
    """A bare, lower-case DOI (no ``https://doi.org/`` or ``doi:`` prefix), or None if there is none."""
    text = clean_text(value)
    if not text:
        return None
    match = DOI_PATTERN.search(text)
    if not match:
        return None
    doi = match.group(0).rstrip(".,;)]}>\"'").lower()
    return doi if len(doi) <= MAX_DOI_LENGTH else None


def normalise_pmid(value: Any) -> str | None:
    """A PubMed id as a digit string, or None."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value) if value > 0 else None
    match = PMID_PATTERN.match(str(value))
    if not match:
        return None
    digits = match.group(1).lstrip("0")
    return digits or None


def parse_year(*values: Any) -> int | None:
    """The first plausible publication year (1500–2100) found in ``values``."""
    for value in values:
        if value is None:
            continue
        if isinstance(value, int) and not isinstance(value, bool):
            if 1500 <= value <= 2100:
                return value
            continue
        match = YEAR_PATTERN.search(clean_text(value) or "")
        if match:
            return int(match.group(1))
    return None


def unique(values: Iterable[Any]) -> list[str]:
    """Cleaned, non-empty, de-duplicated strings in their first order."""
    seen: set[str] = set()
    result: list[str] = []
    for value in values:
        text = clean_text(value)
        if text and text not in seen:
            seen.add(text)
            result.append(text)
    return result


def split_list(value: Any, separators: str = ";") -> list[str]:
    """Split a delimited string (or flatten a list of them) into unique cleaned items."""
    if value is None:
        return []
    items = value if isinstance(value, (list, tuple)) else [value]
    pattern = "[" + re.escape(separators) + "]"
    return unique(part for item in items for part in re.split(pattern, str(item)))


def clean_list(values: Iterable[Any]) -> list[str]:
    """Cleaned, non-empty strings in their order, repeats kept (author lists: two people may share a name)."""
    return [text for text in (clean_text(value) for value in values) if text]


INITIALS_ONLY = re.compile(r"^(?:[A-Z]\.?[ -]?){1,4}$")


def split_authors(value: Any) -> list[str]:
    """Authors from a list or a delimited string: ';' separates names when present, else ',' (unless the parts
    are "Surname, Initials" of one author: "Uno, Y."). Never de-duplicated."""
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return clean_list(value)
    text = str(value)
    if ";" in text:
        return clean_list(text.split(";"))
    parts = clean_list(text.split(","))
    if any(INITIALS_ONLY.match(part) for part in parts[1:]):
        return clean_list([text])
    return parts


def normalise_label(value: Any) -> tuple[str | None, bool]:
    """A human label as ``include`` / ``exclude`` / None, and whether the value was recognised."""
    text = clean_text(value)
    if text is None:
        return None, True
    lowered = text.lower()
    if lowered in INCLUDE_LABELS:
        return "include", True
    if lowered in EXCLUDE_LABELS:
        return "exclude", True
    return None, False


NON_WORD = re.compile(r"[\W_]+")


def normalise_title(title: str) -> str:
    """Title for comparison: accents removed, case-folded, punctuation dropped, whitespace collapsed."""
    if not title.isascii():
        decomposed = unicodedata.normalize("NFKD", title)
        title = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(NON_WORD.sub(" ", title.casefold()).split())


def title_key(title: str, year: int | None) -> str:
    """``title:<normalised title>|<year>`` (hashed when very long)."""
    key = f"title:{normalise_title(title)}|{year or ''}"
    if len(key) > MAX_DEDUP_KEY_LENGTH:
        key = "title-sha256:" + hashlib.sha256(key.encode("utf-8")).hexdigest()
    return key


def dedup_key(doi: str | None, pmid: str | None, title: str, year: int | None) -> str:
    """The record's primary duplicate key: ``doi:…``, else ``pmid:…``, else ``title:<normalised title>|<year>``."""
    if doi:
        return f"doi:{doi}"
    if pmid:
        return f"pmid:{pmid}"
    return title_key(title, year)


def match_keys(doi: str | None, pmid: str | None, title: str | None, year: int | None) -> list[str]:
    """Every key a record is matched on: its DOI, its PMID and its normalised title + year (when it has a
    title that is more than punctuation)."""
    keys = []
    if doi:
        keys.append(f"doi:{doi}")
    if pmid:
        keys.append(f"pmid:{pmid}")
    if title and normalise_title(title):
        keys.append(title_key(title, year))
    return keys


def make_record(index: int, **fields: Any) -> dict[str, Any]:
    """A normalised record dict (every field of RECORD_FIELDS present) at file position ``index``."""
    record: dict[str, Any] = {
        "index": index,
        "title": clean_text(fields.get("title")),
        "abstract": clean_text(fields.get("abstract")),
        "authors": clean_list(fields.get("authors") or []),
        "year": fields.get("year"),
        "journal": clean_text(fields.get("journal")),
        "doi": normalise_doi(fields.get("doi")),
        "pmid": normalise_pmid(fields.get("pmid")),
        "keywords": unique(fields.get("keywords") or []),
        "source_id": (clean_text(fields.get("source_id")) or "")[:MAX_SOURCE_ID_LENGTH] or None,
        "label": fields.get("label"),
        "record_type": fields.get("record_type"),
        "source_database": (clean_text(fields.get("source_database")) or "")[:MAX_SOURCE_DATABASE_LENGTH] or None,
    }
    # every database a record names (litscreen's own exports list several: "Embase; PubMed"), first = the above
    others = [name[:MAX_SOURCE_DATABASE_LENGTH] for name in unique(fields.get("source_databases") or [])]
    record["source_databases"] = unique([record["source_database"], *others]) if record["source_database"] else others
    return record
