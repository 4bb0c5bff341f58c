"""Agreement of a screening run with the review team's own labels (records imported with a human label)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import Literature, ScreeningResult, ScreeningTask
from app.services.statistics import Confusion, agreement_report

# The machine's call is negative only when the models excluded the record; everything else reaches a human.
MACHINE_NEGATIVE = "exclude"


def machine_sends_on(decision: str | None) -> bool:
    """Whether the machine's combined decision sends the record to a human or to full text (not excluded)."""
    return decision != MACHINE_NEGATIVE


def confusion_for_task(session: Session, task: ScreeningTask) -> Confusion:
    """The 2×2 table of the task's results whose records carry a human label (include / exclude)."""
    rows = session.execute(
        select(ScreeningResult, Literature.label)
        .join(Literature, Literature.id == ScreeningResult.literature_id)
        .where(ScreeningResult.task_id == task.id, Literature.label.in_(("include", "exclude")))
    ).all()
    tp = fn = tn = fp = 0
    for result, label in rows:
        sent_on = machine_sends_on(result.llm_decision)
        if label == "include":
            tp, fn = (tp + 1, fn) if sent_on else (tp, fn + 1)
        else:
            fp, tn = (fp + 1, tn) if sent_on else (fp, tn + 1)
    return Confusion(true_positive=tp, false_negative=fn, true_negative=tn, false_positive=fp)


def task_agreement(session: Session, task: ScreeningTask) -> dict[str, Any]:
    """Recall, specificity, work saved, κ and AC1 with 95 % intervals, for the task's labelled records."""
    report = agreement_report(confusion_for_task(session, task))
    report["task_id"] = task.id
    report["definition"] = (
        "positive = the machine sent the record on (include, conflict, uncertain or failed); negative = both "
        "models excluded it; reference = the human label imported with the record")
    return report
