"""How a setting is declared and parsed: :func:`env` declares a dataclass field read from one variable (type,
default, bounds, choices); :func:`group` builds a settings group from a mapping of variable values, refusing a bad
value with a :class:`ConfigError` that names the variable. ``app/config.py`` declares the groups and is the only
module that reads the environment.
"""

from __future__ import annotations

import typing
from collections.abc import Mapping
from dataclasses import field, fields
from types import UnionType
from typing import Any, TypeVar

G = TypeVar("G")

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


class ConfigError(ValueError):
    """A configuration variable has a value litscreen cannot use; the message names the variable."""


def env(name: str, default: Any = None, *, minimum: float | None = None, choices: tuple[str, ...] | None = None,
        secret: bool = False) -> Any:
    """Declare a setting read from variable ``name`` (a dataclass field carrying its name and bounds)."""
    return field(default=default, repr=not secret,
                 metadata={"env": name, "minimum": minimum, "choices": choices})


def parse(name: str, kind: Any, raw: Any, minimum: float | None, choices: tuple[str, ...] | None) -> Any:
    """``raw`` (a string from the environment, or an already typed value) as ``kind``; ConfigError if it is not."""
    if isinstance(kind, UnionType):  # "X | None": None when unset was handled by the caller
        kind = next(arg for arg in typing.get_args(kind) if arg is not type(None))
    if kind is bool:
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text not in _TRUE + _FALSE:
            raise ConfigError(f"{name} must be on or off, got {raw!r}")
        return text in _TRUE
    if kind in (int, float):
        try:
            value = kind(raw) if kind is float or not isinstance(raw, float) else int(raw)
        except (TypeError, ValueError):
            article = "an integer" if kind is int else "a number"
            raise ConfigError(f"{name} must be {article}, got {raw!r}") from None
        if minimum is not None and value < minimum:
            raise ConfigError(f"{name} must be at least {minimum:g}, got {raw!r}")
        return value
    value = str(raw).strip()
    if choices is not None:
        normalised = value.upper() if all(choice.isupper() for choice in choices) else value.lower()
        if normalised not in choices:
            raise ConfigError(f"{name} must be one of {', '.join(choices)}, got {raw!r}")
        return normalised
    return value


def is_set(value: Any) -> bool:
    return value is not None and value != ""


def group(cls: type[G], values: Mapping[str, Any]) -> G:
    """Build settings group ``cls`` (a dataclass of ``env`` fields) from ``values`` (variable name -> value)."""
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for spec in fields(cls):  # type: ignore[arg-type]  # G is always one of the dataclasses of GROUP_TYPES
        name = spec.metadata.get("env")
        if name is None or not is_set(values.get(name)):
            continue
        kwargs[spec.name] = parse(name, hints[spec.name], values[name], spec.metadata["minimum"],
                                   spec.metadata["choices"])
    return cls(**kwargs)


def as_variables(group: Any) -> dict[str, Any]:
    """The group's values under their variable names (None for unset optional ones)."""
    return {spec.metadata["env"]: getattr(group, spec.name) for spec in fields(group) if "env" in spec.metadata}
