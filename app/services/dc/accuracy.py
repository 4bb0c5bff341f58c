"""Accuracy of an extraction against the dataset's gold columns (``gold_columns``: field -> column).

Per field, for each model, for the agreed value and for the final value (a human's decision where there is
one, else the agreed value):

- ``exact_match``: share of records whose value matches the gold value (``values_agree``: strings and enums
  case- and punctuation-insensitive, numbers within the field's tolerance, lists as sets; an empty gold cell
  means "not stated", matched by no value);
- ``coverage``: share of records with a value;
- list fields: micro-averaged ``precision`` and ``recall`` of the items.

Gold cells are normalised with the field's own rules (a ``;``-separated cell is a list); a gold cell that
cannot be read as the field's type is counted in ``gold_invalid`` and left out.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from app.services.extraction import FieldSpec, NormalisationError, comparison_key, normalise_value, values_agree

logger = logging.getLogger(__name__)


def final_value(entry: Mapping[str, Any] | None) -> Any:
    """A field's value after review: the human's value if reviewed, else the agreed value."""
    if not entry:
        return None
    review = entry.get("review")
    if isinstance(review, Mapping) and "value" in review:
        return review["value"]
    return entry.get("value") if entry.get("agreed") else None


class _Tally:
    def __init__(self, is_list: bool) -> None:
        self.n = self.matches = self.covered = 0
        self.is_list = is_list
        self.true_positive = self.predicted = self.relevant = 0

    def add(self, predicted: Any, gold: Any, spec: FieldSpec) -> None:
        self.n += 1
        self.covered += predicted is not None
        self.matches += values_agree(predicted, gold, spec)
        if self.is_list:
            p = comparison_key(predicted, spec) or frozenset()
            g = comparison_key(gold, spec) or frozenset()
            self.true_positive += len(p & g)
            self.predicted += len(p)
            self.relevant += len(g)

    def report(self) -> dict[str, Any]:
        out: dict[str, Any] = {"n": self.n, "matches": self.matches,
                               "exact_match": round(self.matches / self.n, 4) if self.n else None,
                               "coverage": round(self.covered / self.n, 4) if self.n else None}
        if self.is_list:
            out["precision"] = round(self.true_positive / self.predicted, 4) if self.predicted else None
            out["recall"] = round(self.true_positive / self.relevant, 4) if self.relevant else None
        return out


def accuracy_report(specs: Sequence[FieldSpec], gold_columns: Mapping[str, str], models: Sequence[str],
                    results: Iterable[tuple[Mapping[str, Any] | None, Mapping[str, Any]]]) -> dict[str, Any]:
    """The report over ``results``: ``(result fields or None for a failed record, the record's row)`` pairs."""
    by_name = {s.name: s for s in specs}
    fields = [by_name[name] for name in gold_columns if name in by_name]
    tallies = {s.name: {key: _Tally(s.type == "list") for key in [*models, "agreed", "final"]} for s in fields}
    invalid = dict.fromkeys(tallies, 0)
    records = 0
    for result_fields, row in results:
        records += 1
        for spec in fields:
            try:
                gold = normalise_value(row.get(gold_columns[spec.name]), spec)
            except NormalisationError:
                invalid[spec.name] += 1
                continue
            entry = (result_fields or {}).get(spec.name) or {}
            by_model = entry.get("by_model") or {}
            for model in models:
                tallies[spec.name][model].add(by_model.get(model), gold, spec)
            tallies[spec.name]["agreed"].add(entry.get("value") if entry.get("agreed") else None, gold, spec)
            tallies[spec.name]["final"].add(final_value(entry) if entry else None, gold, spec)
    return {
        "records": records,
        "fields": {
            spec.name: {
                "gold_column": gold_columns[spec.name], "type": spec.type, "gold_invalid": invalid[spec.name],
                "by_model": {m: tallies[spec.name][m].report() for m in models},
                "agreed": tallies[spec.name]["agreed"].report(),
                "final": tallies[spec.name]["final"].report(),
            }
            for spec in fields
        },
    }
