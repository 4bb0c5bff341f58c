"""The methods paragraph of a run (PRISMA 2020 item 8, RAISE): written from the task's own records.

It names the tool and its version, the models and providers, the prompt version and the SHA-256 of the prompt
text, the request parameters, the decision rule, who reviewed what, and the validation figures (agreement with
the team's labels, the audit's recall bound) when there are any.
"""

from __future__ import annotations

import hashlib
import json
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.llm.prompts import REQUEST_PARAMS, SYSTEM_PROMPT
from app.models import ScreeningResult, ScreeningTask, User
from app.services.agreement import task_agreement
from app.services.audit import audit_report

RULES = {
    "unanimous": "a record was included when every model included it and excluded when every model excluded it; "
                 "any disagreement, uncertain answer or failed call sent it to a human reviewer",
    "majority": "a record took the decision of the majority of the models; ties, uncertain answers and failed "
                "calls sent it to a human reviewer",
}


def tool_version() -> str:
    """The installed litscreen version."""
    try:
        return version("litscreen")
    except PackageNotFoundError:  # running from a checkout without an install
        return "unknown"


def prompt_hash() -> str:
    """SHA-256 of the system prompt and request parameters, the text a reader can check a rerun against."""
    material = json.dumps({"system": SYSTEM_PROMPT, "params": REQUEST_PARAMS}, sort_keys=True)
    return hashlib.sha256(material.encode()).hexdigest()


def _reviewers(session: Session, task: ScreeningTask) -> list[tuple[str, int]]:
    rows = session.execute(
        select(User.name, func.count()).join(ScreeningResult, ScreeningResult.reviewer_id == User.id)
        .where(ScreeningResult.task_id == task.id, ScreeningResult.review_decision.is_not(None))
        .group_by(User.name).order_by(User.name)).all()
    return [(str(name), int(count)) for name, count in rows]


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def methods_text(session: Session, task: ScreeningTask) -> dict[str, Any]:
    """The paragraph and the facts it was written from."""
    snapshot = task.model_config or {}
    models = [f"{m.get('model')} ({m.get('provider')})" for m in snapshot.get("models", [])]
    rule = str(snapshot.get("decision_rule", "unanimous"))
    params = ", ".join(f"{k} {v}" for k, v in REQUEST_PARAMS.items() if k != "response_format")
    reviewers = _reviewers(session, task)
    agreement = task_agreement(session, task)
    audit = audit_report(session, task)
    sentences = [
        f"Titles and abstracts were screened with litscreen {tool_version()} (self-hosted), using "
        f"{len(models)} large language models independently: {', '.join(models) or 'none recorded'}.",
        f"Each model received the review's PICOS and eligibility criteria with one record at a time (prompt version "
        f"{snapshot.get('prompt_version', 'unknown')}, SHA-256 {prompt_hash()[:16]}…; {params}) and answered with "
        f"a decision, a reason and a confidence.",
        f"Decision rule: {RULES.get(rule, rule)}.",
        f"Of {task.total_items:,} records, {task.success_items:,} were screened by the models, "
        f"{task.conflict_items:,} were sent to a human because the models disagreed and {task.failed_items:,} "
        "failed and were left to a human.",
    ]
    if reviewers:
        sentences.append("Human reviewers decided " + "; ".join(f"{name}: {n:,} records" for name, n in reviewers)
                         + ".")
    else:
        sentences.append("No human review decisions have been recorded for this run yet.")
    if agreement["n"]:
        sentences.append(
            f"Against the review team's own decisions on {agreement['n']:,} labelled records, the automated step "
            f"had a recall of {_pct(agreement['recall'])}, a specificity of {_pct(agreement['specificity'])} and "
            f"saved {_pct(agreement['work_saved'])} of the screening work (Cohen's κ "
            f"{agreement['kappa'] if agreement['kappa'] is None else round(agreement['kappa'], 2)}, Gwet's AC1 "
            f"{agreement['ac1'] if agreement['ac1'] is None else round(agreement['ac1'], 2)}).")
    calibration = _calibration(session, task)
    if calibration is not None:
        sentences.append(calibration["sentence"])
    drift = task.drift_report if (task.drift_report or {}).get("status") == "done" else None
    if drift is not None and drift.get("records"):
        sentences.append(
            f"At the end of the run, a fixed subset of {drift['records']:,} records was screened again by the same "
            f"models without the cache (test–retest): the combined decision was identical for "
            f"{_pct(drift.get('decision_agreement'))} of them (Cohen's κ "
            f"{_round(drift.get('kappa'))}).")
    budget = None
    if task.budget_usd is not None:
        budget = {"budget_usd": float(task.budget_usd), "budget_spent_usd": float(task.budget_spent_usd or 0)}
        sentences.append(f"The run had a budget of USD {budget['budget_usd']:.2f} for model calls and spent USD "
                         f"{budget['budget_spent_usd']:.2f}.")
    if audit["reviewed"]:
        sentences.append(
            f"A simple random sample of {audit['reviewed']:,} of the {audit['machine_excluded']:,} machine-excluded "
            f"records was reviewed by a human: {audit['missed_includes']:,} should have been included; the exact "
            f"one-sided 95 % upper bound on the miss rate among machine exclusions is "
            f"{_pct(audit['miss_rate_upper_95'])} (Clopper–Pearson).")
    return {
        "task_id": task.id, "text": " ".join(sentences), "tool_version": tool_version(), "models": models,
        "prompt_version": snapshot.get("prompt_version"), "prompt_sha256": prompt_hash(),
        "parameters": {k: v for k, v in REQUEST_PARAMS.items()}, "decision_rule": rule,
        "reviewers": [{"name": name, "decisions": n} for name, n in reviewers],
        "agreement": agreement, "audit": audit,
        "calibration": None if calibration is None else {k: v for k, v in calibration.items() if k != "sentence"},
        "drift": task.drift_report, "budget": budget,
    }


def _round(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def _setting(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k} {v}" for k, v in value.items())
    return str(value)


def _calibration(session: Session, task: ScreeningTask) -> dict[str, Any] | None:
    """What the methods text says about calibration: this run is one, or follows one (with any differences)."""
    if task.is_calibration:
        report = task_agreement(session, task)
        return {"task_id": task.id, "role": "calibration", "agreement_n": report["n"], "differences": [],
                "sentence": f"This was a calibration run on {task.total_items:,} records with human labels; its "
                            "configuration (models, parameters, prompt version and hash) is locked on the task."}
    if task.calibration_task_id is None:
        return None
    calibration = session.get(ScreeningTask, task.calibration_task_id)
    if calibration is None:
        return None
    report = task_agreement(session, calibration)
    differences = task.config_differences or []
    sentence = (f"Before the full run, the configuration was calibrated on {calibration.total_items:,} records "
                f"({report['n']:,} with a human label; recall {_pct(report['recall'])}, specificity "
                f"{_pct(report['specificity'])}, Cohen's κ {_round(report['kappa'])}).")
    if differences:
        sentence += " The full run differed from the calibrated configuration in: " + "; ".join(
            f"{d['setting']} ({_setting(d['calibration'])} in calibration, {_setting(d['run'])} in the run)"
            for d in differences) + "."
    else:
        sentence += " The full run used the same locked configuration (models, parameters, prompt version and hash)."
    return {"task_id": calibration.id, "role": "followed", "agreement_n": report["n"], "differences": differences,
            "sentence": sentence}
