"""PRISMA 2020 flow counts of a project, from its own rows: imports, title/abstract and full-text runs.

Identification: records per source database and duplicates removed at import. Before screening: records marked
ineligible by automation (both models excluded them and no human overruled). Screening: records a human screened
(conflicts, uncertain and failed items, audited exclusions) and the records humans excluded. Retrieval and
eligibility: reports sought, not retrieved, assessed and excluded with reasons (from a full-text run when there
is one). Included: studies included in the review.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.models import Literature, Project, ScreeningResult, ScreeningTask
from app.services.fulltext.prisma import fulltext_prisma_counts
from app.services.identification import identification_counts as import_identification

TITLE_ABSTRACT = "title_abstract"
FINISHED = ("completed", "completed_with_errors")


def identification_counts(session: Session, project: Project) -> dict[str, Any]:
    """Records identified per source database and duplicates removed, from the project's imports (records
    written without an import batch, e.g. by an older version, count under their source format)."""
    imports = import_identification(session, project)
    by_source = {db["name"]: int(db["records_identified"]) for db in imports["databases"]}
    untracked = session.execute(select(Literature.source_format, func.count())
                                .where(Literature.project_id == project.id, Literature.import_batch_id.is_(None))
                                .group_by(Literature.source_format)).all()
    for source, count in untracked:
        by_source[str(source or "unknown")] = by_source.get(str(source or "unknown"), 0) + int(count)
    return {"by_source": by_source, "identified": sum(by_source.values()),
            "duplicates_removed": int(imports["duplicates_removed"])}


def latest_task(session: Session, project: Project, task_type: str) -> ScreeningTask | None:
    """The project's newest finished task of ``task_type`` (else its newest task of that kind)."""
    base = select(ScreeningTask).where(ScreeningTask.project_id == project.id,
                                       ScreeningTask.task_type == task_type).order_by(ScreeningTask.id.desc())
    return session.scalar(base.where(ScreeningTask.status.in_(FINISHED)).limit(1)) or session.scalar(base.limit(1))


def screening_counts(session: Session, task: ScreeningTask | None) -> dict[str, Any]:
    """Automation and human counts of a title/abstract task."""
    counts: Counter[str] = Counter()
    if task is not None:
        for result in session.scalars(select(ScreeningResult).where(ScreeningResult.task_id == task.id)):
            machine = result.llm_decision
            human = result.review_decision
            counts["screened_total"] += 1
            if machine == "exclude" and human is None:
                counts["automation_excluded"] += 1
                continue
            counts["human_screened"] += 1
            if human == "exclude":
                counts["human_excluded"] += 1
            elif human == "include" or (human is None and machine == "include"):
                counts["sent_to_fulltext"] += 1
            else:
                counts["awaiting_human"] += 1
    return {
        "task_id": task.id if task else None,
        "records_screened": counts["screened_total"],
        "marked_ineligible_by_automation": counts["automation_excluded"],
        "screened_by_humans": counts["human_screened"],
        "excluded_by_humans": counts["human_excluded"],
        "awaiting_human_decision": counts["awaiting_human"],
        "sent_to_fulltext": counts["sent_to_fulltext"],
    }


def fulltext_counts(session: Session, project: Project, sought: int) -> dict[str, Any]:
    """Reports sought / not retrieved / assessed / excluded with reasons, from the newest full-text run (before
    one: only the reports sought, the records title/abstract screening sent on)."""
    counts = fulltext_prisma_counts(session, project.id)
    if counts["fulltext_task_id"] is None:
        return {"task_id": None, "reports_sought": sought, "reports_not_retrieved": None, "reports_assessed": None,
                "reports_excluded": None, "exclusion_reasons": {}, "studies_included": None}
    return {"task_id": counts["fulltext_task_id"], "reports_sought": counts["reports_sought"],
            "reports_not_retrieved": counts["reports_not_retrieved"], "reports_assessed": counts["reports_assessed"],
            "reports_excluded": counts["reports_excluded"], "exclusion_reasons": counts["excluded_by_reason"],
            "studies_included": counts["studies_included"]}


def prisma_counts(session: Session, project: Project) -> dict[str, Any]:
    """Every PRISMA 2020 count of the project."""
    identification = identification_counts(session, project)
    screening = screening_counts(session, latest_task(session, project, TITLE_ABSTRACT))
    full_text = fulltext_counts(session, project, screening["sent_to_fulltext"])
    return {"project_id": project.id, "identification": identification, "screening": screening,
            "fulltext": full_text}
