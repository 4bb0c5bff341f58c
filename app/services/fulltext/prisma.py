"""PRISMA 2020 full-text counts of a project: reports sought, not retrieved, assessed, excluded with reasons.

- *sought for retrieval*: the records that passed title/abstract screening (include or conflict in the newest
  title/abstract task), plus any record a full-text task assessed;
- *not retrieved*: sought records without a usable full text (none attached, or a PDF without a text layer);
- *assessed for eligibility*: the newest full-text task's results that succeeded;
- *excluded*: assessed reports whose final decision (a human's review included) is exclude, by reason;
- *included*: assessed reports finally included; *awaiting review*: the rest (conflicts not yet decided).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.llm.fulltext_prompts import EXCLUSION_REASONS
from app.models import Fulltext, Literature, ScreeningResult
from app.services.fulltext.items import latest_task, title_abstract_passed

NOT_STATED = "reason not stated"


def fulltext_prisma_counts(session: Session, project_id: int) -> dict[str, Any]:
    """The full-text part of a PRISMA 2020 flow for ``project_id`` (see module docstring)."""
    task = latest_task(session, project_id, "fulltext")
    results: Sequence[Any] = []
    if task is not None:
        results = session.execute(select(ScreeningResult.literature_id, ScreeningResult.status,
                                         ScreeningResult.final_decision, ScreeningResult.exclusion_reason)
                                  .where(ScreeningResult.task_id == task.id)).all()
    sought = (title_abstract_passed(session, project_id) or set()) | {r.literature_id for r in results}
    retrieved = set(session.scalars(
        select(Fulltext.literature_id).join(Literature, Literature.id == Fulltext.literature_id)
        .where(Literature.project_id == project_id, Fulltext.text_available.is_(True))))
    assessed = [r for r in results if r.status == "success"]
    excluded = [r for r in assessed if r.final_decision == "exclude"]
    by_reason = {reason: 0 for reason in EXCLUSION_REASONS}
    for row in excluded:
        key = row.exclusion_reason if row.exclusion_reason in by_reason else NOT_STATED
        by_reason[key] = by_reason.get(key, 0) + 1
    included = sum(1 for r in assessed if r.final_decision == "include")
    return {
        "fulltext_task_id": task.id if task else None,
        "reports_sought": len(sought),
        "reports_not_retrieved": len(sought - retrieved),
        "reports_assessed": len(assessed),
        "reports_excluded": len(excluded),
        "excluded_by_reason": {k: v for k, v in by_reason.items() if v},
        "studies_included": included,
        "awaiting_review": len(assessed) - len(excluded) - included,
        "failed": len(results) - len(assessed),
    }
