"""The final decision of a record from its models' decisions (contract rule, configurable for > 2 models).

``unanimous`` (default): every model include → include; every model exclude → exclude; otherwise conflict.
``majority``: more than half include → include, more than half exclude → exclude; otherwise conflict.
Any disagreement sets ``has_conflict``; a ``conflict`` outcome needs manual review.
"""

from __future__ import annotations

from dataclasses import dataclass

DECISION_RULES = ("unanimous", "majority")


@dataclass(frozen=True)
class FinalDecision:
    final_decision: str        # include | exclude | conflict
    has_conflict: bool
    manual_review_required: bool


def combine(decisions: list[str], rule: str = "unanimous") -> FinalDecision:
    """Combine per-model decisions (include | exclude | uncertain)."""
    if rule not in DECISION_RULES:
        raise ValueError(f"decision rule must be one of {', '.join(DECISION_RULES)}, got {rule!r}")
    if not decisions:
        raise ValueError("no decisions to combine")
    includes = decisions.count("include")
    excludes = decisions.count("exclude")
    total = len(decisions)
    disagreement = len(set(decisions)) > 1 or decisions[0] == "uncertain"
    if rule == "unanimous":
        final = "include" if includes == total else "exclude" if excludes == total else "conflict"
    else:
        final = "include" if includes * 2 > total else "exclude" if excludes * 2 > total else "conflict"
    return FinalDecision(final, disagreement, final == "conflict")
