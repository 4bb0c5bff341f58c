"""Auditing machine exclusions: a random sample for human review and an exact upper bound on the miss rate.

A reviewer who lets the models exclude records needs a number to defend it: review a simple random sample of
the machine-excluded records, count the includes the models missed, and report the exact (Clopper–Pearson)
one-sided 95 % upper bound on the miss rate among all machine exclusions, and what it means in records.
"""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.models import ScreeningResult, ScreeningTask
from app.services.statistics import audit_sample_size, clopper_pearson_upper

MAX_AUDIT_SAMPLE = 10_000


class AuditError(ValueError):
    """The audit request cannot be met (the message says why)."""


def _machine_excluded_ids(session: Session, task: ScreeningTask) -> list[tuple[int, bool]]:
    """(result id, already sampled) of every result the models excluded, whatever a human decided later."""
    rows = session.execute(select(ScreeningResult.id, ScreeningResult.audit_sampled_at)
                           .where(ScreeningResult.task_id == task.id, ScreeningResult.llm_decision == "exclude")
                           .order_by(ScreeningResult.id)).all()
    return [(result_id, sampled_at is not None) for result_id, sampled_at in rows]


def draw_audit_sample(session: Session, task: ScreeningTask, size: int,
                      rng: random.Random | None = None) -> dict[str, Any]:
    """Add ``size`` machine-excluded results not yet sampled to the audit sample, queued for human review."""
    if size < 1 or size > MAX_AUDIT_SAMPLE:
        raise AuditError(f"size must be between 1 and {MAX_AUDIT_SAMPLE}")
    candidates = [result_id for result_id, sampled in _machine_excluded_ids(session, task) if not sampled]
    if not candidates:
        raise AuditError("there are no machine-excluded results left to sample")
    chosen = (rng or random.SystemRandom()).sample(candidates, min(size, len(candidates)))
    session.execute(update(ScreeningResult).where(ScreeningResult.id.in_(chosen))
                    .values(audit_sampled_at=datetime.now(UTC), manual_review_required=True))
    session.commit()
    report = audit_report(session, task)
    report["added"] = len(chosen)
    report["result_ids"] = sorted(chosen)
    return report


def audit_report(session: Session, task: ScreeningTask) -> dict[str, Any]:
    """Sampled, reviewed and missed includes, with the exact upper 95 % bound on the miss rate."""
    excluded = len(_machine_excluded_ids(session, task))
    sampled_rows = session.execute(
        select(ScreeningResult.review_decision).where(ScreeningResult.task_id == task.id,
                                                      ScreeningResult.audit_sampled_at.is_not(None))).all()
    reviewed = [decision for (decision,) in sampled_rows if decision is not None]
    missed = sum(1 for decision in reviewed if decision == "include")
    upper = clopper_pearson_upper(missed, len(reviewed))
    return {
        "task_id": task.id,
        "machine_excluded": excluded,
        "sampled": len(sampled_rows),
        "reviewed": len(reviewed),
        "missed_includes": missed,
        "miss_rate": missed / len(reviewed) if reviewed else None,
        "miss_rate_upper_95": upper,
        "missed_records_upper_95": math.ceil(upper * excluded) if upper is not None else None,
        "sample_for_1pct_bound": audit_sample_size(0.01),
        "meaning": _meaning(excluded, len(reviewed), missed, upper),
    }


def _meaning(excluded: int, reviewed: int, missed: int, upper: float | None) -> str:
    if upper is None:
        return "No audited record has been reviewed yet."
    return (f"{missed} of {reviewed} audited machine exclusions were includes. With 95 % confidence the miss rate "
            f"among the {excluded} machine-excluded records is at most {upper:.2%}, i.e. at most "
            f"{math.ceil(upper * excluded)} missed includes (exact one-sided Clopper–Pearson bound).")
