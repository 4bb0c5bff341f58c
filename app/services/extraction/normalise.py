"""Normalisation of a model's raw value to a field's canonical form, by the field's type.

- ``string``: whitespace collapsed, stripped; empty -> ``None``.
- ``number``: a number, or a string with an optional unit (``"1.2 g"``, ``"45 %"``, ``"1,200 mg"``); with the
  field's ``unit`` set, the value is converted to it with ``pint`` (a bare number is taken as already in it).
- ``integer``: as number, then it must be whole.
- ``date``: ISO ``YYYY-MM-DD`` (``YYYY-MM`` / ``YYYY`` kept when only that much is given); other spellings parsed
  with ``dateutil`` (month-first for ``03/04/2020`` unless the field says ``dayfirst``).
- ``boolean``: true/false, yes/no, y/n, 1/0, present/absent, positive/negative.
- ``enum``: matched case- and space-insensitively against the declared values; returned in the declared spelling.
- ``list``: a JSON list or a ``;`` / newline / comma separated string; items normalised as strings (or as the
  enum when the field has one), de-duplicated case-insensitively, order kept.

``None``, ``""`` and the usual "not stated" spellings mean absent and normalise to ``None`` for every type.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import math
import re
from typing import Any

from app.services.extraction.fields import FieldSpec

logger = logging.getLogger(__name__)

ABSENT = {"", "none", "null", "n/a", "na", "not stated", "not reported", "not mentioned", "unknown",
          "not available", "not documented", "-"}
_TRUE = {"true", "yes", "y", "1", "present", "positive", "t"}
_FALSE = {"false", "no", "n", "0", "absent", "negative", "f"}
_NUMBER = re.compile(r"^\s*([-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|[-+]?\.\d+)\s*(.*?)\s*$")
_PARTIAL_DATE = re.compile(r"^(\d{4})(?:-(\d{1,2}))?$")
_LIST_SPLIT = re.compile(r"\s*(?:;|\n|,)\s*")


class NormalisationError(ValueError):
    """A value that cannot be read as the field's type. The message names the field and the problem only."""


@functools.lru_cache(maxsize=1)
def unit_registry() -> Any:
    """The process-wide ``pint`` registry (built once: it takes a few hundred ms)."""
    import pint

    registry: Any = pint.UnitRegistry(autoconvert_offset_to_baseunit=True)
    registry.define("beats_per_minute = 1 / minute = bpm")
    registry.define("breaths_per_minute = 1 / minute")
    return registry


def is_absent(value: Any) -> bool:
    """True for ``None``, empty strings/lists and "not stated" spellings."""
    if value is None:
        return True
    if isinstance(value, str):
        return value.strip().casefold() in ABSENT
    if isinstance(value, (list, tuple)):
        return all(is_absent(v) for v in value)
    return False


def _string(value: Any, spec: FieldSpec) -> str:
    if isinstance(value, (dict, list)):
        raise NormalisationError(f"{spec.name}: expected text, got a {type(value).__name__}")
    return " ".join(str(value).split())


def _number(value: Any, spec: FieldSpec) -> float:
    if isinstance(value, bool):
        raise NormalisationError(f"{spec.name}: expected a number, got a boolean")
    if isinstance(value, (int, float)):
        if not math.isfinite(value):
            raise NormalisationError(f"{spec.name}: not a finite number")
        return float(value)
    if not isinstance(value, str):
        raise NormalisationError(f"{spec.name}: expected a number, got a {type(value).__name__}")
    match = _NUMBER.match(value)
    if not match:
        raise NormalisationError(f"{spec.name}: not a number")
    magnitude = float(match.group(1).replace(",", ""))
    unit = match.group(2).strip()
    if not unit or not spec.unit or unit.casefold() == spec.unit.casefold():
        return magnitude
    registry = unit_registry()
    try:
        quantity = registry.Quantity(magnitude, unit)
        return float(quantity.to(spec.unit).magnitude)
    # pint's errors are not one family: PintError subclasses, TypeError, and a bare AssertionError from its
    # tokenizer on inputs such as "kg/"
    except (ArithmeticError, AssertionError, AttributeError, TypeError, ValueError) as exc:
        raise NormalisationError(f"{spec.name}: unit cannot be converted to {spec.unit} "
                                 f"({type(exc).__name__})") from None


def _integer(value: Any, spec: FieldSpec) -> int:
    number = _number(value, spec)
    if abs(number - round(number)) > 1e-9:
        raise NormalisationError(f"{spec.name}: expected a whole number")
    return round(number)


def _date(value: Any, spec: FieldSpec) -> str:
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if not isinstance(value, str):
        raise NormalisationError(f"{spec.name}: expected a date, got a {type(value).__name__}")
    text = value.strip()
    partial = _PARTIAL_DATE.match(text)
    if partial:
        year, month = partial.group(1), partial.group(2)
        if month is None:
            return year
        if not 1 <= int(month) <= 12:
            raise NormalisationError(f"{spec.name}: not a date")
        return f"{year}-{int(month):02d}"
    from dateutil import parser

    try:
        parsed = parser.parse(text, dayfirst=bool(spec.extra.get("dayfirst", False)))
    except (ValueError, OverflowError):
        raise NormalisationError(f"{spec.name}: not a date") from None
    return parsed.date().isoformat()


def _boolean(value: Any, spec: FieldSpec) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    word = str(value).strip().casefold()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise NormalisationError(f"{spec.name}: expected true or false")


def _fold(text: str) -> str:
    return " ".join(str(text).split()).casefold()


def _enum(value: Any, spec: FieldSpec) -> str:
    folded = _fold(value)
    for option in spec.enum or ():
        if _fold(option) == folded:
            return option
    raise NormalisationError(f"{spec.name}: not one of the allowed values ({', '.join(spec.enum or ())})")


def _list(value: Any, spec: FieldSpec) -> list[str] | None:
    if isinstance(value, str):
        items: list[Any] = _LIST_SPLIT.split(value)
    elif isinstance(value, (list, tuple)):
        items = list(value)
    else:
        raise NormalisationError(f"{spec.name}: expected a list")
    out: list[str] = []
    seen: set[str] = set()
    for item in items:
        if is_absent(item):
            continue
        text = _enum(item, spec) if spec.enum else _string(item, spec)
        if _fold(text) not in seen:
            seen.add(_fold(text))
            out.append(text)
    return out or None


_BY_TYPE = {"string": _string, "number": _number, "integer": _integer, "date": _date, "boolean": _boolean,
            "enum": _enum, "list": _list}


def normalise_value(value: Any, spec: FieldSpec) -> Any:
    """``value`` in the canonical form of ``spec``'s type, ``None`` when absent; :class:`NormalisationError`
    when it cannot be read as that type."""
    if is_absent(value):
        return None
    return _BY_TYPE[spec.type](value, spec)
