"""Spreadsheet-safe CSV cells (OWASP "CSV Injection"): a cell that starts with ``=``, ``+``, ``-``, ``@``, a tab
or a carriage return is prefixed with a single quote, so Excel, LibreOffice and Google Sheets show it as text
instead of evaluating it as a formula. Numbers written by litscreen itself (ids, years, confidences) are left
alone: only strings pass through ``neutralise_cell``."""

from __future__ import annotations

from typing import Any

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise_cell(value: Any) -> Any:
    """``value`` with a leading ``'`` when it is a string a spreadsheet would read as a formula."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def neutralise_row(row: list[Any]) -> list[Any]:
    """Every cell of a CSV row through ``neutralise_cell``."""
    return [neutralise_cell(cell) for cell in row]
