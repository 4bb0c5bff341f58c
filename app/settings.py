"""Reading settings: the Flask config first, the environment as fallback (worker subprocesses get env vars)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any


def setting(config: Mapping[str, Any] | None, name: str, default: Any = None) -> Any:
    """``config[name]`` if set (not None / ""), else ``os.environ[name]`` if set, else ``default``."""
    if config is not None:
        value = config.get(name)
        if value not in (None, ""):
            return value
    value = os.environ.get(name)
    if value not in (None, ""):
        return value
    return default


def float_setting(config: Mapping[str, Any] | None, name: str, default: float) -> float:
    """A float setting; ValueError naming the setting when it is not a number."""
    value = setting(config, name, default)
    try:
        return float(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a number, got {value!r}") from exc


def int_setting(config: Mapping[str, Any] | None, name: str, default: int) -> int:
    """An integer setting; ValueError naming the setting when it is not an integer."""
    value = setting(config, name, default)
    try:
        return int(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be an integer, got {value!r}") from exc
