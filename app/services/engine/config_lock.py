"""The configuration a run is locked to, and how a later run differs from the calibration it follows."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def config_differences(calibration: Mapping[str, Any], run: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One entry ``{setting, calibration, run}`` per setting whose value differs (empty: the same configuration)."""
    return [{"setting": key, "calibration": calibration.get(key), "run": run.get(key)}
            for key in sorted(set(calibration) | set(run)) if calibration.get(key) != run.get(key)]
