"""CSV (and TSV) exports read with the standard library: header variants of Scopus, Embase, IEEE Xplore, Web of
Science-like tools, Cochrane CENTRAL, EBSCOhost, litscreen's own export and ``title, abstract, label_included``
validation sets. An optional human label column is kept as ``include`` / ``exclude``; a document type column
gives the record type; the source database comes from a database column, else from a recognised "Source"
value, accession numbers or record links, else from the header's signature (Embase's "Emtree" columns, IEEE's
"IEEE Terms")."""

from __future__ import annotations

import csv
import re
import sys
from typing import Any

from app.importers import record_types, sources
from app.importers.errors import ImportRejected
from app.importers.normalise import (
    clean_list,
    clean_text,
    iter_lines,
    make_record,
    normalise_label,
    parse_year,
    split_authors,
    split_list,
    text_lines,
)
from app.importers.parsed import ParsedFile

csv.field_size_limit(min(sys.maxsize, 2**31 - 1))

# Accepted headers per field, compared case- and punctuation-insensitively, in order of preference.
COLUMN_ALIASES: dict[str, tuple[str, ...]] = {
    "title": ("title", "documenttitle", "articletitle", "primarytitle", "ti"),
    "abstract": ("abstract", "ab", "abstractnote", "originalabstract"),
    "authors": ("authors", "author", "authornames", "authorfullnames", "au"),
    "year": ("year", "publicationyear", "py", "pubyear", "publicationdate", "date"),
    "journal": ("sourcetitle", "journal", "publicationtitle", "journaltitle", "secondarytitle", "journalbook", "so"),
    "doi": ("doi", "do"),
    "pmid": ("pubmedid", "pmid", "medlinepmid"),
    "keywords": ("authorkeywords", "keywords", "indexkeywords", "ieeeterms"),
    "source_id": ("accessionnumber", "eid", "centralid", "pui", "embaseaccessionid", "ut", "uniquewosid",
                  "recordid", "id", "key"),
    "record_type": ("recordtype", "documenttype", "publicationtype", "doctype", "dt", "type", "documentidentifier"),
    "source_database": ("sourcedatabase", "databasename", "database"),
    "links": ("plink", "link", "url", "openurllink", "pdflink"),
}
# Columns of litscreen's own CSV export (app/services/export.py)
LITSCREEN_EXPORT_COLUMNS = ("literatureid", "llmdecision", "humanlabel", "accessionnumber")
# Header signatures of exports that do not name their database in a column.
HEADER_SIGNATURES = (
    (("emtreemedicalindexterms",), sources.EMBASE),
    (("ieeeterms",), sources.IEEE_XPLORE),
    (("centralid",), sources.CENTRAL),
    (("eid", "sourcetitle"), sources.SCOPUS),
)
# Human labels: the abstract-screening label is what title/abstract screening is compared against.
LABEL_COLUMNS = (
    "labelabstractscreening", "labeltitleabstract", "labelincluded", "included", "include", "label",
    "humanlabel",
)
TITLE_HEADERS = ("Title", "Document Title", "Article Title", "Primary Title", "TI")
# Embase's "Source" column: "Journal Name (2014) 3:3 (152-160). …"
EMBASE_SOURCE = re.compile(r"^(?P<journal>.+?) \((?P<year>\d{4})\)")
DELIMITERS = (",", ";", "\t")
SNIFF_LINE_CHARS = 1_000_000


def header_key(name: str) -> str:
    """A header compared without case, spaces or punctuation ("Document Title" → "documenttitle")."""
    return re.sub(r"[^a-z0-9]+", "", name.lower())


def detect_delimiter(first_line: str) -> str:
    """The delimiter used most often in the header line (outside quotes)."""
    unquoted = re.sub(r'"[^"]*"', "", first_line)
    return max(DELIMITERS, key=unquoted.count)


def _first_line(text: str) -> str:
    for line in text_lines(text[:SNIFF_LINE_CHARS]):
        if line.strip():
            return line
    return ""


def has_title_header(head: str) -> bool:
    """Whether the first line of ``head`` is a CSV header with a recognised title column."""
    first = _first_line(head)
    if not first:
        return False
    try:
        header = next(csv.reader([first], delimiter=detect_delimiter(first)))
    except (csv.Error, StopIteration):
        return False
    return any(header_key(name) in COLUMN_ALIASES["title"] for name in header)


def _columns(header: list[str]) -> tuple[dict[str, list[int]], int | None, int | None, str | None, bool]:
    positions: dict[str, int] = {}
    for position, name in enumerate(header):
        positions.setdefault(header_key(name), position)
    columns = {
        field: [positions[alias] for alias in aliases if alias in positions]
        for field, aliases in COLUMN_ALIASES.items()
    }
    label = next((positions[name] for name in LABEL_COLUMNS if name in positions), None)
    source = positions.get("source")
    signature = next((name for keys, name in HEADER_SIGNATURES if all(k in positions for k in keys)), None)
    own_export = all(key in positions for key in LITSCREEN_EXPORT_COLUMNS)
    return columns, label, source, signature, own_export


def parse_csv(text: str) -> ParsedFile:
    """Parse CSV text into normalised records."""
    first = _first_line(text)
    delimiter = detect_delimiter(first)
    reader = csv.reader(iter_lines(text), delimiter=delimiter, strict=True)
    try:
        header = next(reader, None)
        while header is not None and not any(cell.strip() for cell in header):
            header = next(reader, None)
        if header is None:
            raise ImportRejected(422, "Malformed CSV: no header row.")
        columns, label_column, source_column, signature, own_export = _columns(header)
        if not columns["title"]:
            found = ", ".join(repr(h) for h in header[:12]) + (" …" if len(header) > 12 else "")
            raise ImportRejected(
                422,
                f"Malformed CSV: no title column (found {found}; expected one of "
                f"{', '.join(TITLE_HEADERS)}).",
            )
        parsed = ParsedFile(records=[], format="csv")
        unrecognised_labels: dict[str, int] = {}
        index = 0
        for row in reader:
            if not any(cell.strip() for cell in row):
                continue
            if len(row) > len(header):
                raise ImportRejected(
                    422,
                    f"Malformed CSV: the row ending on line {reader.line_num} has {len(row)} fields but the "
                    f"header has {len(header)} (a stray delimiter or quote?).",
                )
            parsed.records.append(
                _row_to_record(index, row, columns, label_column, source_column, signature, own_export,
                               unrecognised_labels)
            )
            index += 1
    except csv.Error as exc:
        raise ImportRejected(422, f"Malformed CSV: line {reader.line_num}: {exc}.") from exc
    if index == 0:
        raise ImportRejected(422, "The CSV file has a header but no records.")
    if unrecognised_labels:
        examples = ", ".join(repr(v) for v in list(unrecognised_labels)[:3])
        parsed.warnings.append(
            f"{sum(unrecognised_labels.values())} record(s) had a label that is neither include nor exclude "
            f"(e.g. {examples}); they were imported without a label."
        )
    return parsed


def _keywords(value: str | None) -> list[str]:
    """Keywords split on ';', or on commas outside parentheses (Embase: "cyst (diagnosis, surgery), …")."""
    if not value:
        return []
    if ";" in value:
        return split_list(value, ";")
    return split_list(re.split(r",(?![^()]*\))", value), "\x00")


def _row_to_record(
    index: int,
    row: list[str],
    columns: dict[str, list[int]],
    label_column: int | None,
    source_column: int | None,
    signature: str | None,
    own_export: bool,
    unrecognised_labels: dict[str, int],
) -> dict[str, Any]:
    def value(field: str) -> str | None:
        for position in columns[field]:
            if position < len(row) and row[position].strip():
                return row[position]
        return None

    journal, year = value("journal"), parse_year(value("year"))
    source_value = row[source_column].strip() if source_column is not None and source_column < len(row) else ""
    if source_value and (not journal or not year):
        match = EMBASE_SOURCE.match(source_value)
        if match:
            journal = journal or match.group("journal")
            year = year or int(match.group("year"))
        elif not journal and not sources.recognise(source_value):
            journal = source_value  # Cochrane CSV: "Source" is the journal
    source_id = value("source_id")
    # litscreen's own export lists every database: "Embase; PubMed"
    named = (value("source_database") or "").split(sources.SOURCE_SEPARATOR)
    source_database = sources.detect_source(named[:1], [source_value, source_id, value("links")]) or signature
    label = None
    if label_column is not None and label_column < len(row):
        label, recognised = normalise_label(row[label_column])
        if not recognised:
            raw = clean_text(row[label_column]) or ""
            unrecognised_labels[raw] = unrecognised_labels.get(raw, 0) + 1
    return make_record(
        index,
        title=value("title"),
        abstract=value("abstract"),
        # litscreen's export joins authors with "; " (a single "Deshaies, Eric M" has no ';')
        authors=clean_list((value("authors") or "").split(";")) if own_export else split_authors(value("authors")),
        year=year,
        journal=journal,
        doi=value("doi"),
        pmid=value("pmid"),
        keywords=_keywords(value("keywords")),
        source_id=source_id,
        label=label,
        record_type=record_types.from_label(value("record_type")),
        source_database=source_database,
        source_databases=[sources.detect_source([name]) for name in named[1:] if name.strip()],
    )
