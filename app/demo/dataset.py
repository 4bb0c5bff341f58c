"""The bundled review data set (Nagtegaal et al. 2019, CC0) and the deterministic subset the demo screens.

See ``app/data/PROVENANCE.md``. ``label_abstract_screening`` is the review team's title/abstract decision
(1 = include), which the demo compares the two models against.
"""

from __future__ import annotations

import csv
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

DATASET_PATH = Path(__file__).resolve().parent.parent / "data" / "nagtegaal_2019_nudging.csv"
DATASET_NAME = "Nagtegaal et al. 2019, nudging healthcare professionals (CC0)"

PROJECT_NAME = "Demo: nudging healthcare professionals (Nagtegaal 2019)"
PICOS = {
    "P": "healthcare professionals (physicians, nurses, pharmacists, other clinicians) making care decisions",
    "I": "nudges: changes to choice architecture such as defaults, reminders, alerts, feedback, "
         "peer comparison, prompts, order sets, salience or framing",
    "C": "usual care, no nudge, or another intervention",
    "O": "evidence-based practice behaviour of the professionals: prescribing, test ordering, "
         "guideline adherence, referral or documentation",
    "S": "empirical studies with a comparison: randomised or controlled trials, quasi-experimental, "
         "before-after or interrupted time series studies",
}
INCLUSION_CRITERIA = ("Empirical studies of a nudge aimed at healthcare professionals that measure the effect "
                      "on evidence-based practice or professional decision making.")
EXCLUSION_CRITERIA = ("Interventions aimed at patients or the public only; education, training, financial "
                      "incentives or regulation without a choice-architecture element; reviews, protocols, "
                      "editorials and studies without outcome data.")


DATASET_SIZE = 2019


def source_line(count: int) -> str:
    """Where the records came from, for the flow diagram."""
    if count >= DATASET_SIZE:
        return f"Nagtegaal et al. 2019: all {DATASET_SIZE:,} records"
    return f"Nagtegaal et al. 2019: {count:,} of {DATASET_SIZE:,} records"


@dataclass(frozen=True)
class DatasetRecord:
    """One row of the bundled CSV."""

    record_id: int
    title: str
    abstract: str
    label: str  # "include" | "exclude" at title/abstract screening
    duplicate_of: int | None

    def as_import_record(self) -> dict[str, Any]:
        """The record as sent to ``POST /literatures`` (contract fields only)."""
        record: dict[str, Any] = {"title": self.title, "label": self.label,
                                  "source_id": f"nagtegaal2019:{self.record_id}"}
        if self.abstract:
            record["abstract"] = self.abstract
        return record


def load_dataset(path: Path = DATASET_PATH) -> list[DatasetRecord]:
    """Every record of the bundled CSV, in record_id order."""
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    records = [
        DatasetRecord(
            record_id=int(row["record_id"]),
            title=row["title"].strip(),
            abstract=(row.get("abstract") or "").strip(),
            label="include" if row["label_abstract_screening"].strip() == "1" else "exclude",
            duplicate_of=int(row["duplicate_record_id"]) if (row.get("duplicate_record_id") or "").strip() else None,
        )
        for row in rows
    ]
    return sorted(records, key=lambda r: r.record_id)


def _evenly_spaced(items: list[DatasetRecord], count: int) -> list[DatasetRecord]:
    if count >= len(items):
        return list(items)
    return [items[int((i + 0.5) * len(items) / count)] for i in range(count)]


def demo_subset(records: list[DatasetRecord], count: int | None) -> list[DatasetRecord]:
    """``count`` records (None = all), stratified by label and evenly spaced by record_id: deterministic.

    The share of includes matches the full data set (392 of 2,019), with at least one include and one exclude
    whenever ``count`` >= 2, so recall and specificity are always defined.
    """
    if count is None or count >= len(records):
        return list(records)
    if count <= 0:
        raise ValueError("the number of records must be positive")
    includes = [r for r in records if r.label == "include"]
    excludes = [r for r in records if r.label == "exclude"]
    n_include = round(count * len(includes) / len(records))
    if count >= 2:
        n_include = min(max(n_include, 1), count - 1)
    chosen = _evenly_spaced(includes, n_include) + _evenly_spaced(excludes, count - n_include)
    return sorted(chosen, key=lambda r: r.record_id)
