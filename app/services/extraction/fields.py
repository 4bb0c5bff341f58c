"""The field of an extraction schema: name, type and the constraints normalisation and agreement use."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

logger = logging.getLogger(__name__)

FIELD_TYPES = ("string", "number", "integer", "date", "boolean", "enum", "list")


@dataclass(frozen=True)
class FieldSpec:
    """One field to extract. ``enum`` for type ``enum`` (and optionally the items of a ``list``); ``unit`` for
    numbers (values in other units are converted to it); ``tolerance`` is the relative tolerance numbers agree
    within (default 1 %)."""

    name: str
    type: str
    description: str = ""
    enum: tuple[str, ...] | None = None
    unit: str | None = None
    required: bool = False
    tolerance: float = 0.01
    extra: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self) -> None:
        if self.type not in FIELD_TYPES:
            raise ValueError(f"unknown field type {self.type!r}; expected one of {', '.join(FIELD_TYPES)}")
        if self.type == "enum" and not self.enum:
            raise ValueError(f"field {self.name!r} of type enum needs a non-empty 'enum' list")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FieldSpec:
        """Build from a schema's JSON field object (``{name, type, description?, enum?, unit?, required?}``)."""
        enum = data.get("enum")
        known = {"name", "type", "description", "enum", "unit", "required", "tolerance"}
        return cls(
            name=str(data["name"]),
            type=str(data["type"]),
            description=str(data.get("description") or ""),
            enum=tuple(str(v) for v in enum) if enum else None,
            unit=data.get("unit") or None,
            required=bool(data.get("required", False)),
            tolerance=float(data["tolerance"]) if data.get("tolerance") is not None else 0.01,
            extra={k: v for k, v in data.items() if k not in known},
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (inverse of :meth:`from_dict`)."""
        out: dict[str, Any] = {"name": self.name, "type": self.type, "description": self.description,
                               "required": self.required}
        if self.enum:
            out["enum"] = list(self.enum)
        if self.unit:
            out["unit"] = self.unit
        return out
