"""Drift check: at the end of a long title/abstract run, re-screen a fixed small subset without the cache and report
test–retest agreement — do the same models, asked the same question again, still answer the same?

When a run of at least ``DRIFT_CHECK_MIN_RECORDS`` records completes, ``finalize_task`` sends one
``drift_check`` message (``engine.recovery``). The subset is fixed by the task: the ``DRIFT_CHECK_RECORDS``
successful results first in ``md5(task id, item id)`` order (a repeat draws the same records). Every model is
called again with the run's own snapshot, the LLM cache bypassed, and each answer is compared with the stored one.
The report (``screening_tasks.drift_report``) gives the share of identical combined decisions, Cohen's κ between
the run and the retest (positive = sent on to a human, as in ``agreement``), the share per model, the records whose
combined decision changed and what the retest cost (added to the run's ``budget_spent_usd``). A run with a
budget skips the check when its estimated cost does not fit what is left.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select, text, update

from app.llm.client import LLMUnavailable
from app.models import Literature, Project, ScreeningResult, ScreeningTask
from app.models.statuses import TaskStatus
from app.services.agreement import machine_sends_on
from app.services.engine.context import EngineContext
from app.services.record_screening import Criteria, RecordText, build_screener
from app.services.statistics import Confusion, cohen_kappa

logger = logging.getLogger(__name__)

TASKS = ScreeningTask.__table__
RESULTS = ScreeningResult.__table__
DRIFT_KIND = "title_abstract"
COMPLETED = (TaskStatus.COMPLETED, TaskStatus.COMPLETED_WITH_ERRORS)


def drift_check_due(ctx: EngineContext, task_type: str, total_items: int, is_calibration: bool) -> bool:
    """Whether a run that just completed gets a drift check (title/abstract, long enough, switched on)."""
    settings = ctx.settings
    return (task_type == DRIFT_KIND and not is_calibration and settings.drift_check_records > 0
            and total_items >= settings.drift_check_min_records)


def _claim(ctx: EngineContext, task_id: int) -> bool:
    """Mark the check as running, only once per task (a second delivery finds the report there)."""
    with ctx.engine.begin() as conn:
        claimed = conn.execute(
            update(TASKS).where(TASKS.c.id == task_id, TASKS.c.drift_report.is_(None),
                                TASKS.c.status.in_(COMPLETED))
            .values(drift_report={"status": "running", "started_at": datetime.now(UTC).isoformat()})
            .returning(TASKS.c.id)).first()
    return claimed is not None


def _store(ctx: EngineContext, task_id: int, report: dict[str, Any], cost: float = 0.0) -> dict[str, Any]:
    with ctx.engine.begin() as conn:
        conn.execute(update(TASKS).where(TASKS.c.id == task_id).values(
            drift_report=report, budget_spent_usd=TASKS.c.budget_spent_usd + Decimal(str(round(cost, 6)))))
    return report


SUBSET_SQL = text("""
SELECT item_id FROM screening_results
WHERE task_id = :task_id AND status = 'success' AND literature_id IS NOT NULL
ORDER BY md5(CAST(:task_id AS text) || ':' || CAST(item_id AS text)) LIMIT :size
""")


def run_drift_check(ctx: EngineContext, task_id: int) -> dict[str, Any] | None:
    """Re-screen the task's fixed subset without the cache and store the test–retest report (None: not due)."""
    if not _claim(ctx, task_id):
        logger.info("task %s: drift check already done or not due", task_id)
        return None
    with ctx.session() as session:
        task = session.get(ScreeningTask, task_id)
        assert task is not None
        project = session.get(Project, task.project_id)
        ids = list(session.scalars(SUBSET_SQL, {"task_id": task_id, "size": ctx.settings.drift_check_records}))
        results = {r.item_id: r for r in session.scalars(
            select(ScreeningResult).where(ScreeningResult.task_id == task_id, ScreeningResult.item_id.in_(ids)))}
        records = {r.id: RecordText(r.id, r.title or "", r.abstract) for r in session.scalars(
            select(Literature).where(Literature.id.in_(ids)))}
        snapshot = dict(task.model_config or {})
        budget = None if task.budget_usd is None else float(task.budget_usd)
        spent = float(task.budget_spent_usd or 0)
        criteria = Criteria(picos=dict(project.picos or {}) if project else {},
                            inclusion_criteria=project.inclusion_criteria if project else None,
                            exclusion_criteria=project.exclusion_criteria if project else None)
    screener = build_screener(snapshot, ctx.config, None, limits_engine=ctx.engine)  # no cache: real new calls
    try:
        estimate = sum(screener.max_cost(criteria, records[i]) for i in ids if i in records)
        if budget is not None and spent + estimate > budget:
            return _store(ctx, task_id, {"status": "skipped", "reason": "budget", "estimated_cost_usd": estimate})
        todo = [item_id for item_id in ids if item_id in records]
        with ThreadPoolExecutor(max_workers=screener.concurrency, thread_name_prefix="drift") as pool:
            screenings = list(pool.map(lambda item_id: screener.screen(criteria, records[item_id]), todo))
        retest = list(zip(todo, screenings, strict=True))
    except LLMUnavailable as exc:
        return _store(ctx, task_id, {"status": "failed", "error": str(exc)})
    finally:
        screener.close()
    report = drift_report(results, retest)
    cost = float(sum(screening.cost for _i, screening in retest))
    report["cost_usd"] = round(cost, 6)
    logger.info("task %s: drift check on %d records, %.0f%% identical", task_id, report["records"],
                100 * (report["decision_agreement"] or 0))
    return _store(ctx, task_id, report, cost)


def drift_report(original: dict[int, ScreeningResult], retest: list[tuple[int, Any]]) -> dict[str, Any]:
    """Compare the stored results with their retest (``RecordScreening`` per item)."""
    same = 0
    per_model: dict[str, list[int]] = {}
    changed: list[dict[str, Any]] = []
    tp = fn = tn = fp = 0
    compared = 0
    for item_id, screening in retest:
        before = original[item_id]
        if screening.failed:
            changed.append({"literature_id": before.literature_id, "before": before.llm_decision, "after": None,
                            "error": screening.error})
            continue
        compared += 1
        after = screening.final_decision
        if after == before.llm_decision:
            same += 1
        else:
            changed.append({"literature_id": before.literature_id, "before": before.llm_decision, "after": after})
        first, second = machine_sends_on(before.llm_decision), machine_sends_on(after)
        tp, fn, tn, fp = tp + (first and second), fn + (first and not second), \
            tn + (not first and not second), fp + (not first and second)
        stored = {str(d.get("model")): d.get("decision") for d in before.decisions or []}
        for decision in screening.decisions:
            counts = per_model.setdefault(decision.model, [0, 0])
            counts[1] += 1
            counts[0] += int(decision.decision == stored.get(decision.model))
    kappa, kappa_ci = cohen_kappa(Confusion(true_positive=tp, false_negative=fn, true_negative=tn, false_positive=fp))
    return {
        "status": "done", "checked_at": datetime.now(UTC).isoformat(), "records": compared,
        "failed": len(retest) - compared,
        "decision_agreement": same / compared if compared else None,
        "kappa": kappa, "kappa_ci95": list(kappa_ci) if kappa_ci else None,
        "by_model": {model: {"agreement": agreed / total if total else None, "records": total}
                     for model, (agreed, total) in sorted(per_model.items())},
        "changed": changed,
        "definition": ("the run's stored answers against a second call of the same models with the same prompt, "
                       "the cache bypassed; κ on sent on (include, conflict, uncertain) vs excluded"),
    }


def drift_view(task: ScreeningTask, ctx_settings: Any) -> dict[str, Any]:
    """The task's drift report, or why there is none yet."""
    if task.drift_report:
        return {"task_id": task.id, **task.drift_report}
    due = (task.task_type == DRIFT_KIND and not task.is_calibration and ctx_settings.drift_check_records > 0
           and task.total_items >= ctx_settings.drift_check_min_records)
    reason = ("the run has not completed yet" if due and task.status not in COMPLETED else
              "waiting for the drift check" if due else
              f"no drift check: it runs for completed title/abstract runs of at least "
              f"{ctx_settings.drift_check_min_records} records (DRIFT_CHECK_MIN_RECORDS; DRIFT_CHECK_RECORDS="
              f"{ctx_settings.drift_check_records})")
    return {"task_id": task.id, "status": "pending" if due else "not_applicable", "reason": reason}

