"""The demo's numbers: decision counts, agreement with the human labels, and how they are printed.

Agreement is computed per record from the run's final decision and the review team's title/abstract label:

* a record the machine **sends to a human** is one whose final decision is ``include`` or ``conflict``, or whose
  screening failed (a failed record cannot be excluded safely, so a human reads it);
* a record the machine **excludes** is one both models excluded (final decision ``exclude``).

``recall`` = human-included records that the machine sent to a human / all human-included records;
``specificity`` = human-excluded records the machine excluded / all human-excluded records;
``work_saved`` = records the machine excluded / all screened records, i.e. the share of titles and abstracts
nobody needs to read.
"""

from __future__ import annotations

import csv
import io
from dataclasses import asdict, dataclass
from typing import Any

from rich.console import Console
from rich.table import Table

AGREEMENT_DEFINITION = (
    "sent to a human = final decision include or conflict, or failed; excluded = both models excluded. "
    "recall = human includes sent to a human / human includes; specificity = human excludes excluded / "
    "human excludes; work saved = records excluded / records screened (records nobody needs to read)."
)
DECISIONS = ("include", "exclude", "conflict")
LABEL_COLUMNS = ("human_label", "label")
# the export's machine decision ("llm_decision": the models' combined decision, whatever a human decided later)
DECISION_COLUMNS = ("llm_decision", "decision", "final_decision")


@dataclass
class DecisionCounts:
    """Final decisions of a run's results (failed = no final decision)."""

    included: int = 0
    excluded: int = 0
    conflicts: int = 0
    failed: int = 0

    @property
    def decided(self) -> int:
        return self.included + self.excluded + self.conflicts

    @property
    def total(self) -> int:
        return self.decided + self.failed


@dataclass
class Agreement:
    """The confusion matrix against the human labels and the figures derived from it."""

    true_positive: int = 0   # human include, machine sent to a human
    false_negative: int = 0  # human include, machine excluded (a missed include)
    true_negative: int = 0   # human exclude, machine excluded
    false_positive: int = 0  # human exclude, machine sent to a human
    unlabelled: int = 0

    @property
    def labelled(self) -> int:
        return self.true_positive + self.false_negative + self.true_negative + self.false_positive

    @property
    def recall(self) -> float | None:
        positives = self.true_positive + self.false_negative
        return self.true_positive / positives if positives else None

    @property
    def specificity(self) -> float | None:
        negatives = self.true_negative + self.false_positive
        return self.true_negative / negatives if negatives else None

    @property
    def work_saved(self) -> float | None:
        return (self.true_negative + self.false_negative) / self.labelled if self.labelled else None

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.update(recall=self.recall, specificity=self.specificity, work_saved=self.work_saved,
                    definition=AGREEMENT_DEFINITION)
        return data


def machine_sends_to_human(final_decision: str | None) -> bool:
    """Whether a record with this final decision goes to a human (anything but a clean exclude)."""
    return final_decision != "exclude"


def count_decisions(final_decisions: list[str | None]) -> DecisionCounts:
    """Count include / exclude / conflict; anything else (None, failed) is a failure."""
    counts = DecisionCounts()
    for decision in final_decisions:
        if decision == "include":
            counts.included += 1
        elif decision == "exclude":
            counts.excluded += 1
        elif decision == "conflict":
            counts.conflicts += 1
        else:
            counts.failed += 1
    return counts


def agreement(pairs: list[tuple[str | None, str | None]]) -> Agreement:
    """Agreement from (final decision, human label) pairs; labels are include / exclude (None = unlabelled)."""
    result = Agreement()
    for decision, label in pairs:
        if label not in ("include", "exclude"):
            result.unlabelled += 1
            continue
        sent = machine_sends_to_human(decision)
        if label == "include":
            if sent:
                result.true_positive += 1
            else:
                result.false_negative += 1
        elif sent:
            result.false_positive += 1
        else:
            result.true_negative += 1
    return result


def normalise_decision(value: str | None) -> str | None:
    """An export cell as a final decision (empty = failed)."""
    value = (value or "").strip().lower()
    return value or None


def agreement_from_csv(text: str) -> tuple[DecisionCounts, Agreement]:
    """Recompute the counts and the agreement from a results CSV (the export's ``llm_decision`` column and the
    ``human_label`` column the demo adds)."""
    rows = list(csv.DictReader(io.StringIO(text)))
    if not rows:
        return DecisionCounts(), Agreement()
    label_column = next((c for c in LABEL_COLUMNS if c in rows[0]), None)
    decision_column = next((c for c in DECISION_COLUMNS if c in rows[0]), "decision")
    decisions = [normalise_decision(row.get(decision_column)) for row in rows]
    labels = [normalise_decision(row.get(label_column)) if label_column else None for row in rows]
    return count_decisions(decisions), agreement(list(zip(decisions, labels, strict=True)))


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.1f} %"


def summary_table(summary: dict[str, Any]) -> Table:
    """The run's figures as a rich table."""
    table = Table(title="Screening run", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column(justify="right")
    table.add_column(style="dim")
    table.add_row("records screened", str(summary["screened"]),
                  f"{summary['imported']} imported, {summary['duplicates']} duplicates, "
                  f"{summary['skipped']} skipped of {summary['records_sent']} sent")
    table.add_row("included", str(summary["included"]), "both models include")
    table.add_row("excluded", str(summary["excluded"]), "both models exclude")
    table.add_row("conflicts", str(summary["conflicts"]), "models disagree → human review")
    table.add_row("failed", str(summary["failed"]), "no valid decision → human review")
    table.add_row("LLM calls", str(summary["llm_calls"]),
                  ", ".join(f"{m}: {n}" for m, n in sorted(summary["llm_calls_by_model"].items())) or "")
    table.add_row("cache hits", "–" if summary["cache_hits"] is None else str(summary["cache_hits"]),
                  "calls answered from the PostgreSQL LLM cache")
    table.add_row("tokens", f"{summary['prompt_tokens'] + summary['completion_tokens']:,}",
                  f"{summary['prompt_tokens']:,} prompt + {summary['completion_tokens']:,} completion")
    table.add_row("screening time", f"{summary['screening_seconds']:.1f} s",
                  f"{summary['records_per_second']:.1f} records/s, {summary['total_batches']} batches, "
                  f"task {summary['task_id']} {summary['task_status']}")
    table.add_row("elapsed", f"{summary['elapsed_seconds']:.1f} s", "whole demo, start-up included")
    return table


def agreement_table(data: dict[str, Any]) -> Table:
    """Agreement with the human title/abstract labels as a rich table."""
    table = Table(title="Agreement with the review team's title/abstract decisions", show_header=False,
                  title_justify="left")
    table.add_column(style="bold")
    table.add_column(justify="right")
    table.add_column(style="dim")
    positives = data["true_positive"] + data["false_negative"]
    negatives = data["true_negative"] + data["false_positive"]
    table.add_row("recall", _pct(data["recall"]),
                  f"{data['true_positive']} of {positives} human includes sent to a human "
                  f"({data['false_negative']} missed) {_ci(data.get('recall_ci95'))}")
    table.add_row("specificity", _pct(data["specificity"]),
                  f"{data['true_negative']} of {negatives} human excludes excluded {_ci(data.get('specificity_ci95'))}")
    machine_excluded = data["true_negative"] + data["false_negative"]
    labelled = machine_excluded + data["true_positive"] + data["false_positive"]
    table.add_row("work saved", _pct(data["work_saved"]),
                  f"{machine_excluded} of {labelled} records need no human reading")
    if "kappa" in data:
        for name, key in (("Cohen's κ", "kappa"), ("Gwet's AC1", "ac1")):
            value = data.get(key)
            table.add_row(name, "–" if value is None else f"{value:.2f}", _ci(data.get(f"{key}_ci95"), pct=False))
    return table


def flat_agreement(endpoint: dict[str, Any], results: int) -> dict[str, Any]:
    """The agreement endpoint's answer in the demo's flat shape (the 2×2 counts beside the measures)."""
    data = {**endpoint["confusion"]}
    for key in ("n", "recall", "recall_ci95", "specificity", "specificity_ci95", "work_saved", "work_saved_ci95",
                "kappa", "kappa_ci95", "ac1", "ac1_ci95"):
        data[key] = endpoint.get(key)
    data["unlabelled"] = results - int(endpoint["n"])
    data["definition"] = AGREEMENT_DEFINITION
    return data


def _ci(interval: list[float] | None, pct: bool = True) -> str:
    if not interval:
        return ""
    low, high = interval
    return f"95 % CI {low * 100:.1f}–{high * 100:.1f} %" if pct else f"95 % CI {low:.2f} to {high:.2f}"


def print_audit(console: Console, audit: dict[str, Any]) -> None:
    """The audit of machine exclusions in one paragraph."""
    if not audit.get("reviewed"):
        console.print("[dim]Audit: no machine exclusion was audited.[/dim]")
        return
    console.print(f"[bold]Audit of machine exclusions[/bold] ({audit['reviewed']} of {audit['machine_excluded']} "
                  f"sampled at random, decided by the review team's own labels): {audit['meaning']}")


def print_drift(console: Console, drift: dict[str, Any]) -> None:
    """The drift check (test–retest of a fixed subset, the cache bypassed) in one line."""
    if drift.get("status") != "done":
        console.print(f"[dim]Drift check: {drift.get('status')} ({drift.get('reason') or drift.get('error') or ''})"
                      "[/dim]")
        return
    agreement = drift.get("decision_agreement")
    console.print(f"[bold]Drift check[/bold] (GET …/tasks/{{id}}/drift): {drift['records']} records screened again "
                  f"without the cache; identical combined decision for "
                  f"{'n/a' if agreement is None else f'{agreement:.0%}'}, {len(drift.get('changed') or [])} changed.")


def print_methods(console: Console, text: str) -> None:
    console.print("[bold]Methods paragraph[/bold] (GET …/tasks/{id}/methods):")
    console.print(text)


def print_agreement_definition(console: Console) -> None:
    console.print(f"[dim]Definitions: {AGREEMENT_DEFINITION}[/dim]")
