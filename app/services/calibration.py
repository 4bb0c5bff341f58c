"""Calibration before the full run: screen the labelled records (or a sample of them) with the configuration the
full run will use, and show where the machine and the team disagree and which PICOS element drives it.

A calibration is a ``title_abstract`` task flagged ``is_calibration``; its configuration (models, request
parameters, prompt version and the SHA-256 of the prompt text) is locked on the task (``locked_config``). A full
run started afterwards records the latest finished calibration it follows and every setting that differs
(``calibration_task_id``, ``config_differences``; see ``engine.runs.start_task``); the methods text names both.

What the PICOS analysis is based on: each model's answer carries a free-text judgement per PICOS element (the
``picos`` object the prompt asks for). It is read as *met*, *partly met*, *not met* or *not assessed* by keywords
(:func:`classify_judgement`). In a missed include (human include, machine exclude) an element a model judged
*not met* counts against that element; in a false include (human exclude, machine sent on) an element judged
*met* counts. The element with the most counts is reported as the main driver. It is a reading of the models'
own words, not a causal analysis.
"""

from __future__ import annotations

import random
import re
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.llm.prompts import PICOS_ELEMENTS, PICOS_LABELS
from app.models import Literature, Project, ScreeningResult, ScreeningTask
from app.services import engine
from app.services.agreement import machine_sends_on, task_agreement
from app.services.engine.errors import ScreeningError
from app.services.kinds import NothingToProcess, TaskScope

LABELS = ("include", "exclude")
BASIS = ("the models' free-text judgement per PICOS element (the 'picos' object of each answer), read by keywords "
         "as met / partly met / not met; in a missed include an element judged not met counts, in a false include "
         "an element judged met counts")

_NOT_ASSESSED = re.compile(r"^\s*(not assessed|not specified|n/?a|none|unknown|not reported)\b", re.IGNORECASE)
_NOT_MET = re.compile(r"\b(no match|not met|not match\w*|does not|doesn't|mismatch\w*|absent|irrelevant|"
                      r"excluded|wrong|different|fails?|not (?:a |an )?(?:rct|trial|relevant|applicable)|no)\b",
                      re.IGNORECASE)
_PARTLY = re.compile(r"\b(partial\w*|partly|unclear|uncertain|possibl\w*|maybe|some)\b", re.IGNORECASE)
_MET = re.compile(r"\b(match\w*|met|yes|meets|relevant|consistent|fits?|satisf\w*)\b", re.IGNORECASE)


class NotACalibration(ScreeningError):
    """A calibration report of a task that is not a calibration run (409)."""


def classify_judgement(text: object) -> str:
    """``met`` | ``partly`` | ``not_met`` | ``not_assessed`` for one model's judgement of one PICOS element."""
    value = str(text or "").strip()
    if not value or _NOT_ASSESSED.match(value):
        return "not_assessed"
    if _NOT_MET.search(value):
        return "not_met"
    if _PARTLY.search(value):
        return "partly"
    if _MET.search(value):
        return "met"
    return "not_assessed"


def calibration_records(session: Session, project: Project, sample_size: int | None,
                        literature_ids: list[int] | None) -> list[int]:
    """The records a calibration screens: the ones given, else the labelled ones (a fixed random sample of
    ``sample_size`` of them, seeded by the project id, so a repeat draws the same records)."""
    if literature_ids:
        return sorted(set(literature_ids))
    labelled = list(session.scalars(select(Literature.id).where(Literature.project_id == project.id,
                                                                Literature.label.in_(LABELS))
                                    .order_by(Literature.id)))
    if not labelled:
        raise NothingToProcess("The project has no records with a human label (include / exclude): import some "
                               "with a label, or pass literature_ids.")
    if sample_size is not None and sample_size < len(labelled):
        labelled = sorted(random.Random(project.id).sample(labelled, sample_size))
    return labelled


def start_calibration(ctx: engine.EngineContext, session: Session, project: Project, sample_size: int | None = None,
                      literature_ids: list[int] | None = None, batch_size: int | None = None,
                      budget_usd: float | None = None) -> ScreeningTask:
    """Start a calibration run (a title/abstract task flagged ``is_calibration``) on the chosen records."""
    ids = calibration_records(session, project, sample_size, literature_ids)
    scope = TaskScope(owner_id=project.owner_id, project_id=project.id, params={"literature_ids": ids})
    return engine.start_task(ctx, session, "title_abstract", scope, batch_size, budget_usd=budget_usd,
                             is_calibration=True)


def _disagreements(session: Session, task: ScreeningTask) -> list[tuple[ScreeningResult, str]]:
    """Results whose machine call disagrees with the record's label, with the kind: missed or false include."""
    rows = session.execute(
        select(ScreeningResult, Literature.label).join(Literature, Literature.id == ScreeningResult.literature_id)
        .where(ScreeningResult.task_id == task.id, Literature.label.in_(LABELS))
        .order_by(ScreeningResult.item_id)).all()
    found: list[tuple[ScreeningResult, str]] = []
    for result, label in rows:
        sent_on = machine_sends_on(result.llm_decision)
        if label == "include" and not sent_on:
            found.append((result, "missed_include"))
        elif label == "exclude" and sent_on:
            found.append((result, "false_include"))
    return found


def picos_drivers(disagreements: list[tuple[ScreeningResult, str]]) -> list[dict[str, Any]]:
    """Per PICOS element: how often the models' judgements of it point at each kind of disagreement."""
    judgements = {e: {"missed_include": 0, "false_include": 0} for e in PICOS_ELEMENTS}
    records: dict[str, set[int]] = {e: set() for e in PICOS_ELEMENTS}
    for result, kind in disagreements:
        for decision in result.decisions or []:
            for element, judgement in (decision.get("picos") or {}).items():
                element = str(element).upper()
                if element not in judgements:
                    continue
                reading = classify_judgement(judgement)
                if (kind == "missed_include" and reading == "not_met") or \
                        (kind == "false_include" and reading == "met"):
                    judgements[element][kind] += 1
                    records[element].add(result.item_id)
    drivers: list[dict[str, Any]] = [{"element": element, "label": PICOS_LABELS[element],
                "missed_include_judgements": counts["missed_include"],
                "false_include_judgements": counts["false_include"], "records": len(records[element])}
               for element, counts in judgements.items()]
    drivers.sort(key=lambda d: (-(int(d["missed_include_judgements"]) + int(d["false_include_judgements"])),
                                PICOS_ELEMENTS.index(str(d["element"]))))
    return drivers


def calibration_report(session: Session, task: ScreeningTask) -> dict[str, Any]:
    """Agreement with the labels, the disagreements, the PICOS element driving them and the locked configuration."""
    if not task.is_calibration:
        raise NotACalibration(f"Task {task.id} is not a calibration run.")
    disagreements = _disagreements(session, task)
    drivers = picos_drivers(disagreements)
    top = drivers[0] if drivers else None
    main = top["element"] if top and int(top["missed_include_judgements"]) + int(top["false_include_judgements"]) \
        else None
    return {
        "task_id": task.id, "status": task.status, "records": task.total_items,
        "agreement": task_agreement(session, task),
        "disagreements": [{"literature_id": result.literature_id, "kind": kind, "llm_decision": result.llm_decision,
                           "reasons": {str(d.get("model")): d.get("reason") for d in result.decisions or []}}
                          for result, kind in disagreements],
        "picos_drivers": drivers, "main_driver": main, "basis": BASIS,
        "locked_config": task.locked_config or {}, "followed_by": followers(session, task),
    }


def followers(session: Session, task: ScreeningTask) -> list[int]:
    """Ids of the runs that recorded this calibration as the one they follow."""
    return list(session.scalars(select(ScreeningTask.id).where(ScreeningTask.calibration_task_id == task.id)
                                .order_by(ScreeningTask.id)))
