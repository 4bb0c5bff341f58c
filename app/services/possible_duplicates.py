"""Near-duplicates for a human to merge or keep apart: pairs of a project's records that imports did not merge
but that are probably one study —
- the same normalised title with years one apart (or one year missing): an online-first and a print year;
- titles that differ a little (rapidfuzz ratio ≥ ``TITLE_SIMILARITY``) with the same first author and year;
- records that share a DOI, PMID or title + year (two records an import linked, see deduplication.py).
Pairs a human dismissed are not listed again. ``merge_duplicates`` keeps one record, completes it from the
others (missing fields, source databases, label) and removes them; both decisions are stored
(``duplicate_decisions``), merges count as duplicates removed for PRISMA."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from rapidfuzz import fuzz, process
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from app.importers.normalise import match_keys, normalise_title
from app.models import DuplicateDecision, Literature, Project, ScreeningResult, ScreeningTask, User
from app.models.statuses import FINAL_TASK_STATUSES
from app.services.deduplication import MERGED_FIELDS, merge_copy

logger = logging.getLogger(__name__)

TITLE_SIMILARITY = 90.0
MIN_TITLE_CHARS = 20  # shorter titles ("Editorial", "Reply") say too little to pair on similarity alone
SAME_KEY = "shares a DOI, PMID or title and year"
YEAR_OFF_BY_ONE = "same title, publication year differs by one (or is missing on one)"
SIMILAR_TITLE = "similar title, same first author and year"


class DuplicateMergeError(Exception):
    """A merge that cannot be done: ``status`` is the HTTP status, ``field`` the request field at fault."""

    def __init__(self, status: int, message: str, field: str = "merge_ids") -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field


@dataclass(frozen=True)
class _Row:
    id: int
    title: str
    norm_title: str
    year: int | None
    first_author: str
    doi: str | None
    pmid: str | None


def _surname(author: str | None) -> str:
    """A first author's surname for comparison ("Owen-Smith, J" and "Owen-Smith J." → "owensmith")."""
    if not author:
        return ""
    name = author.split(",")[0] if "," in author else author.split(" ")[0]
    return normalise_title(name).replace(" ", "")


def _dismissed_pairs(session: Session, project: Project) -> set[frozenset[int]]:
    pairs: set[frozenset[int]] = set()
    for ids in session.scalars(select(DuplicateDecision.literature_ids).where(
        DuplicateDecision.project_id == project.id, DuplicateDecision.decision == "dismissed"
    )):
        ids = list(ids)
        pairs.update(frozenset((a, b)) for i, a in enumerate(ids) for b in ids[i + 1:])
    return pairs


def _candidate_pairs(rows: Sequence[_Row]) -> dict[frozenset[int], tuple[str, float]]:
    pairs: dict[frozenset[int], tuple[str, float]] = {}

    def add(a: _Row, b: _Row, reason: str, score: float) -> None:
        pairs.setdefault(frozenset((a.id, b.id)), (reason, score))

    by_key: dict[str, list[_Row]] = defaultdict(list)
    by_title: dict[str, list[_Row]] = defaultdict(list)
    by_author_year: dict[tuple[str, int | None], list[_Row]] = defaultdict(list)
    for row in rows:
        for key in match_keys(row.doi, row.pmid, row.title, row.year):
            by_key[key].append(row)
        if row.norm_title:
            by_title[row.norm_title].append(row)
        if row.first_author and row.year and len(row.norm_title) >= MIN_TITLE_CHARS:
            by_author_year[(row.first_author, row.year)].append(row)
    for group in by_key.values():
        for i, a in enumerate(group):
            for b in group[i + 1:]:
                add(a, b, SAME_KEY, 1.0)
    for group in by_title.values():
        for i, a in enumerate(group):
            for b in group[i + 1:]:
                if a.year is None or b.year is None or abs(a.year - b.year) == 1:
                    add(a, b, YEAR_OFF_BY_ONE, 1.0)
    for group in by_author_year.values():
        if len(group) < 2:
            continue
        titles = [row.norm_title for row in group]
        for i, a in enumerate(group):
            later = titles[i + 1:]
            for _title, score, offset in process.extract(a.norm_title, later, scorer=fuzz.ratio,
                                                         score_cutoff=TITLE_SIMILARITY, limit=None):
                b = group[i + 1 + offset]
                if a.norm_title != b.norm_title:
                    add(a, b, SIMILAR_TITLE, round(float(score) / 100, 3))
    return pairs


def find_possible_duplicates(session: Session, project: Project) -> list[dict[str, Any]]:
    """The project's possible-duplicate pairs, most similar first: ``{literature_ids, reason, score, records}``."""
    columns = (Literature.id, Literature.title, Literature.year, Literature.authors, Literature.doi, Literature.pmid)
    rows = [
        _Row(id=r.id, title=r.title, norm_title=normalise_title(r.title or ""), year=r.year,
             first_author=_surname((r.authors or [None])[0]), doi=r.doi, pmid=r.pmid)
        for r in session.execute(select(*columns).where(Literature.project_id == project.id))
    ]
    dismissed = _dismissed_pairs(session, project)
    pairs = {pair: found for pair, found in _candidate_pairs(rows).items() if pair not in dismissed}
    if not pairs:
        return []
    ids = sorted({i for pair in pairs for i in pair})
    records = {r.id: r for r in session.scalars(select(Literature).where(Literature.id.in_(ids)))}
    answer: list[dict[str, Any]] = [
        {"literature_ids": sorted(pair), "reason": reason, "score": score,
         "records": [records[i] for i in sorted(pair)]}
        for pair, (reason, score) in pairs.items()
    ]
    answer.sort(key=lambda item: (-float(item["score"]), item["literature_ids"]))
    return answer


def _project_records(session: Session, project: Project, ids: Iterable[int], field: str) -> list[Literature]:
    wanted = list(dict.fromkeys(ids))
    found = {r.id: r for r in session.scalars(
        select(Literature).where(Literature.project_id == project.id, Literature.id.in_(wanted))
    )}
    missing = [i for i in wanted if i not in found]
    if missing:
        raise DuplicateMergeError(404, f"Record(s) {', '.join(map(str, missing))} not found in project "
                                       f"{project.id}.", field)
    return [found[i] for i in wanted]


def dismiss_duplicates(session: Session, project: Project, user: User | None, ids: Sequence[int]) -> None:
    """Record that the given records are different studies (never listed together again)."""
    if len(set(ids)) < 2:
        raise DuplicateMergeError(422, "Give at least two different record ids.", "literature_ids")
    _project_records(session, project, ids, "literature_ids")
    session.add(DuplicateDecision(project_id=project.id, decision="dismissed", literature_ids=sorted(set(ids)),
                                  user_id=user.id if user else None))
    session.commit()


def merge_duplicates(
    session: Session, project: Project, user: User | None, keep_id: int, merge_ids: Sequence[int]
) -> tuple[Literature, list[str]]:
    """Merge ``merge_ids`` into ``keep_id``: the kept record gets what it lacks from the others, their source
    databases and an ``include`` label if any has one; their screening results move to it where it has none
    for that task (else they are dropped); the merged records are deleted. Returns the kept record and
    warnings. 409 while a screening task of the project is still running."""
    merge_ids = [i for i in dict.fromkeys(merge_ids)]
    if not merge_ids:
        raise DuplicateMergeError(422, "Give at least one record id to merge.")
    if keep_id in merge_ids:
        raise DuplicateMergeError(422, f"Record {keep_id} cannot be both kept and merged.")
    running = session.scalar(select(ScreeningTask.id).where(
        ScreeningTask.project_id == project.id, ScreeningTask.status.not_in(FINAL_TASK_STATUSES)
    ).limit(1))
    if running is not None:
        raise DuplicateMergeError(409, f"Screening task {running} of this project is still running; merge "
                                       "records when it has finished.", "keep_id")
    try:
        kept = _project_records(session, project, [keep_id], "keep_id")[0]
        merged = _project_records(session, project, merge_ids, "merge_ids")
        values: dict[str, Any] = {name: getattr(kept, name) for name in MERGED_FIELDS}
        values.update(label=kept.label, source_databases=list(kept.source_databases or []))
        labels = {r.label for r in [kept, *merged] if r.label}
        for record in merged:
            merge_copy(values, {name: getattr(record, name) for name in (*MERGED_FIELDS, "label", "source_databases")})
        for name in (*MERGED_FIELDS, "label"):
            setattr(kept, name, values[name])
        kept.source_databases = values["source_databases"]
        warnings = []
        if len(labels) > 1:
            warnings.append(f"The merged records carried conflicting human labels ({' vs '.join(sorted(labels))}); "
                            f"record {kept.id} keeps '{kept.label}'.")
        tasks_with_result = set(session.scalars(
            select(ScreeningResult.task_id).where(ScreeningResult.literature_id == kept.id)
        ))
        for record in merged:
            for result in session.scalars(select(ScreeningResult).where(ScreeningResult.literature_id == record.id)):
                if result.task_id not in tasks_with_result:
                    tasks_with_result.add(result.task_id)
                    session.execute(update(ScreeningResult).where(ScreeningResult.id == result.id)
                                    .values(literature_id=kept.id))
        session.execute(delete(Literature).where(Literature.id.in_(merge_ids)))
        session.add(DuplicateDecision(project_id=project.id, decision="merged", kept_id=kept.id,
                                      literature_ids=[kept.id, *merge_ids], user_id=user.id if user else None))
        session.commit()
    except BaseException:
        session.rollback()
        raise
    logger.info("project %d: merged records %s into %d", project.id, merge_ids, keep_id)
    return kept, warnings
