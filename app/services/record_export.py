"""What every export carries about a record so users can join it back to their database exports: abstract,
record type, source database(s), original identifiers (DOI, PMID, the source file's accession number) and the
human label — as CSV/XLSX columns and as RIS fields that litscreen's RIS import reads back (round trip):
``TY`` from the record type, ``DO``, the PMID as a PubMed URL in ``UR`` (read back by any RIS import of ours,
and a link in reference managers), ``AN`` the accession number, ``DB`` the source databases and the label as
the keyword ``litscreen:label:<label>``."""

from __future__ import annotations

import logging
from typing import Any

from app.importers.record_types import ris_code
from app.importers.ris import LABEL_KEYWORD
from app.importers.sources import SOURCE_SEPARATOR
from app.models import Literature

logger = logging.getLogger(__name__)

RECORD_COLUMNS = ("abstract", "record_type", "source_database", "accession_number", "human_label")
PUBMED_URL = "https://pubmed.ncbi.nlm.nih.gov/{pmid}/"


def record_columns(record: Literature) -> list[Any]:
    """The values of RECORD_COLUMNS for one record."""
    return [record.abstract or "", record.record_type or "", SOURCE_SEPARATOR.join(record.source_databases or []),
            record.source_id or "", record.label or ""]


def record_ris_fields(record: Literature) -> dict[str, Any]:
    """rispy fields of one record (title, authors, identifiers, source, label) for a RIS export."""
    entry: dict[str, Any] = {"type_of_reference": ris_code(record.record_type), "title": record.title,
                             "keywords": list(record.keywords or [])}
    if record.abstract:
        entry["abstract"] = record.abstract
    if record.authors:
        entry["authors"] = list(record.authors)
    if record.year:
        entry["year"] = str(record.year)
    if record.journal:
        entry["journal_name"] = record.journal
    if record.doi:
        entry["doi"] = record.doi
    if record.pmid:
        entry["urls"] = [PUBMED_URL.format(pmid=record.pmid)]
    if record.source_id:
        entry["accession_number"] = record.source_id
    if record.source_databases:
        entry["name_of_database"] = SOURCE_SEPARATOR.join(record.source_databases)
    if record.label:
        entry["keywords"].append(f"{LABEL_KEYWORD}{record.label}")
    return entry
