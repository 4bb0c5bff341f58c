"""The statistics a reviewer reports for automated screening: a 2×2 agreement table and its measures.

The machine's call on a record is *positive* when it sends the record on to a human or to full text (include,
conflict, uncertain or a failed item) and *negative* when both models excluded it; the reference is the review
team's own label. From the 2×2 table: recall (sensitivity), specificity, work saved (share of records the machine
excluded, which nobody needs to read), Cohen's κ and Gwet's AC1 (which, unlike κ, behaves at the 1–2 %
prevalence typical of screening), each with a 95 % confidence interval, and the exact (Clopper–Pearson) upper
bound on a miss rate that an audit of machine exclusions reports.

Intervals: Wilson score intervals for proportions; for κ and AC1 the large-sample standard error
``sqrt(pa (1 − pa) / (n (1 − pe)²))`` (Cohen 1960's approximation, which treats chance agreement ``pe`` as fixed).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from scipy.stats import beta, norm

Z95 = float(norm.ppf(0.975))


@dataclass(frozen=True)
class Confusion:
    """Counts of the 2×2 table: machine positive/negative against human include/exclude."""

    true_positive: int   # human include, machine sent on
    false_negative: int  # human include, machine excluded (a missed include)
    true_negative: int   # human exclude, machine excluded
    false_positive: int  # human exclude, machine sent on

    @property
    def n(self) -> int:
        return self.true_positive + self.false_negative + self.true_negative + self.false_positive

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def wilson_interval(successes: int, trials: int, z: float = Z95) -> tuple[float, float] | None:
    """The Wilson score interval of ``successes / trials`` (None without trials)."""
    if trials <= 0:
        return None
    p = successes / trials
    denominator = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def clopper_pearson_upper(failures: int, trials: int, confidence: float = 0.95) -> float | None:
    """The exact one-sided upper ``confidence`` bound on a rate from ``failures`` in ``trials`` (None if no trials).

    With no failures this is ``1 − (1 − confidence)^(1/n)``, about ``3/n`` at 95 % (the "rule of three").
    """
    if trials <= 0:
        return None
    if failures >= trials:
        return 1.0
    return float(beta.ppf(confidence, failures + 1, trials - failures))


def audit_sample_size(max_miss_rate: float, confidence: float = 0.95) -> int:
    """Records to audit so that finding no missed include bounds the miss rate below ``max_miss_rate``."""
    if not 0 < max_miss_rate < 1:
        raise ValueError("max_miss_rate must be between 0 and 1")
    return math.ceil(math.log(1 - confidence) / math.log(1 - max_miss_rate))


def _chance_corrected(observed: float, chance: float, n: int) -> tuple[float | None, tuple[float, float] | None]:
    if chance >= 1.0:
        return None, None  # every rating in one category on both sides: the coefficient is undefined
    value = (observed - chance) / (1 - chance)
    se = math.sqrt(observed * (1 - observed) / (n * (1 - chance) ** 2))
    return value, (max(-1.0, value - Z95 * se), min(1.0, value + Z95 * se))


def cohen_kappa(table: Confusion) -> tuple[float | None, tuple[float, float] | None]:
    """Cohen's κ of the table with a 95 % interval (None for an empty or one-category table)."""
    n = table.n
    if n == 0:
        return None, None
    observed = (table.true_positive + table.true_negative) / n
    machine_pos = (table.true_positive + table.false_positive) / n
    human_pos = (table.true_positive + table.false_negative) / n
    chance = machine_pos * human_pos + (1 - machine_pos) * (1 - human_pos)
    return _chance_corrected(observed, chance, n)


def gwet_ac1(table: Confusion) -> tuple[float | None, tuple[float, float] | None]:
    """Gwet's AC1 of the table with a 95 % interval (None for an empty table)."""
    n = table.n
    if n == 0:
        return None, None
    observed = (table.true_positive + table.true_negative) / n
    machine_pos = (table.true_positive + table.false_positive) / n
    human_pos = (table.true_positive + table.false_negative) / n
    mean_pos = (machine_pos + human_pos) / 2
    chance = 2 * mean_pos * (1 - mean_pos)
    return _chance_corrected(observed, chance, n)


def _rate(successes: int, trials: int) -> dict[str, Any]:
    interval = wilson_interval(successes, trials)
    return {"value": successes / trials if trials else None, "ci95": list(interval) if interval else None}


def agreement_report(table: Confusion) -> dict[str, Any]:
    """Every measure of the table: value and 95 % interval each, plus the counts they come from."""
    kappa, kappa_ci = cohen_kappa(table)
    ac1, ac1_ci = gwet_ac1(table)
    recall = _rate(table.true_positive, table.true_positive + table.false_negative)
    specificity = _rate(table.true_negative, table.true_negative + table.false_positive)
    work_saved = _rate(table.true_negative + table.false_negative, table.n)
    return {
        "n": table.n,
        "recall": recall["value"], "recall_ci95": recall["ci95"],
        "specificity": specificity["value"], "specificity_ci95": specificity["ci95"],
        "work_saved": work_saved["value"], "work_saved_ci95": work_saved["ci95"],
        "kappa": kappa, "kappa_ci95": list(kappa_ci) if kappa_ci else None,
        "ac1": ac1, "ac1_ci95": list(ac1_ci) if ac1_ci else None,
        "confusion": table.as_dict(),
    }
