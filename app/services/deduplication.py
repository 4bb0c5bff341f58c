"""Exact duplicates across databases: records sharing any key (DOI, PMID, normalised title + year) are one
record, even when each copy carries a different subset of keys (a PubMed copy with PMID only, a Scopus copy with
DOI and PMID, an EndNote copy with title and year only). Union-find over keys, within one import and against the
records already in the project.

A title + year match never joins records whose DOIs (or PMIDs) differ: "Reply to the letter" in two journals is
two records. Those pairs are left to the near-duplicate list (app/services/possible_duplicates.py)."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from app.importers.normalise import match_keys

logger = logging.getLogger(__name__)


@dataclass
class ExistingRecord:
    """The identifying fields of a record already in the project."""

    id: int
    doi: str | None
    pmid: str | None
    title: str
    year: int | None
    label: str | None
    source_databases: list[str] = field(default_factory=list)
    empty_fields: set[str] = field(default_factory=set)


@dataclass
class DuplicateGroup:
    """One record and its copies: positions in the import (file order) and ids of existing records (id order)."""

    new: list[int] = field(default_factory=list)
    existing: list[int] = field(default_factory=list)


class _UnionFind:
    """Union-find over node ids with the DOIs and PMIDs each set holds (to refuse conflicting title joins)."""

    def __init__(self) -> None:
        self.parent: dict[Any, Any] = {}
        self.dois: dict[Any, set[str]] = {}
        self.pmids: dict[Any, set[str]] = {}

    def add(self, node: Any, doi: str | None, pmid: str | None) -> None:
        self.parent[node] = node
        self.dois[node] = {doi} if doi else set()
        self.pmids[node] = {pmid} if pmid else set()

    def find(self, node: Any) -> Any:
        root = node
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[node] != root:  # path compression
            self.parent[node], node = root, self.parent[node]
        return root

    def compatible(self, a: Any, b: Any) -> bool:
        ra, rb = self.find(a), self.find(b)
        return not (self.dois[ra] and self.dois[rb] and not self.dois[ra] & self.dois[rb]) and not (
            self.pmids[ra] and self.pmids[rb] and not self.pmids[ra] & self.pmids[rb]
        )

    def union(self, a: Any, b: Any) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return
        self.parent[rb] = ra
        self.dois[ra] |= self.dois.pop(rb)
        self.pmids[ra] |= self.pmids.pop(rb)


def group_duplicates(records: Sequence[dict[str, Any]], existing: Iterable[ExistingRecord]) -> list[DuplicateGroup]:
    """Duplicate groups of ``records`` (normalised, with a title) among themselves and against ``existing``.

    Every record of ``records`` is in exactly one group; groups are ordered by their first new record."""
    sets = _UnionFind()
    holders: dict[str, Any] = {}
    title_links: list[tuple[Any, Any]] = []

    def register(node: Any, doi: str | None, pmid: str | None, title: str | None, year: int | None) -> None:
        sets.add(node, doi, pmid)
        for key in match_keys(doi, pmid, title, year):
            holder = holders.setdefault(key, node)
            if holder == node:
                continue
            if key.startswith(("doi:", "pmid:")):
                sets.union(holder, node)
            else:
                title_links.append((holder, node))

    for row in existing:
        register(("e", row.id), row.doi, row.pmid, row.title, row.year)
    for position, record in enumerate(records):
        register(("n", position), record["doi"], record["pmid"], record["title"], record["year"])
    # identifier joins first, so a title join sees every DOI/PMID its sets will hold
    for holder, node in title_links:
        if sets.compatible(holder, node):
            sets.union(holder, node)

    groups: dict[Any, DuplicateGroup] = {}
    for position in range(len(records)):
        group = groups.setdefault(sets.find(("n", position)), DuplicateGroup())
        group.new.append(position)
    for node in sets.parent:
        if node[0] == "e":
            root = sets.find(node)
            if root in groups:
                groups[root].existing.append(node[1])
    for group in groups.values():
        group.existing.sort()
    return list(groups.values())


MERGED_FIELDS = ("abstract", "doi", "pmid", "journal", "year", "record_type", "source_id")


def merge_copy(kept: dict[str, Any], copy: dict[str, Any]) -> None:
    """Complete ``kept`` from a copy of the same record: fields it lacks, every database the copy was found in,
    and the label (a copy a human included keeps the record included)."""
    for name in MERGED_FIELDS:
        if not kept.get(name) and copy.get(name):
            kept[name] = copy[name]
    sources = kept.setdefault("source_databases", [])
    for database in copy.get("source_databases") or []:
        if database not in sources:
            sources.append(database)
    if copy.get("label") == "include":
        kept["label"] = "include"
    elif not kept.get("label"):
        kept["label"] = copy.get("label")


def label_conflict(copies: Sequence[dict[str, Any]], existing: Sequence[ExistingRecord]) -> str | None:
    """A warning when the copies of one record (and the matching existing records) carry different labels."""
    labels = {c["label"] for c in copies if c.get("label")} | {e.label for e in existing if e.label}
    if len(labels) < 2:
        return None
    where = ", ".join(f"#{c['index']}" for c in copies)
    if existing:
        where += f" and existing record(s) {', '.join(str(e.id) for e in existing)}"
    title = (copies[0].get("title") or "")[:80]
    return (f"Duplicate records {where} ('{title}') carry conflicting human labels ({' vs '.join(sorted(labels))}); "
            "the record keeps 'include'.")
