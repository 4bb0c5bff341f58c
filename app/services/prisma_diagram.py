"""The PRISMA 2020 flow diagram (databases only) of a project's counts, as a self-contained SVG document."""

from __future__ import annotations

from typing import Any
from xml.sax.saxutils import escape

BOX_W, LINE_H, PAD = 340, 17, 14
LEFT_X, RIGHT_X, WIDTH = 40, 430, 800
ROW_GAP = 36


def _n(value: int | None) -> str:
    return "not recorded" if value is None else f"n = {value:,}"


def _box(x: int, y: int, lines: list[str], fill: str) -> tuple[str, int]:
    height = PAD * 2 + LINE_H * len(lines)
    parts = [f'<rect x="{x}" y="{y}" width="{BOX_W}" height="{height}" rx="4" fill="{fill}" stroke="#333" '
             f'stroke-width="1.2"/>']
    for i, line in enumerate(lines):
        weight = ' font-weight="bold"' if i == 0 else ""
        parts.append(f'<text x="{x + 12}" y="{y + PAD + 12 + i * LINE_H}"{weight}>{escape(line)}</text>')
    return "\n".join(parts), height


def _arrow(x1: float, y1: float, x2: float, y2: float) -> str:
    return (f'<line x1="{x1:.0f}" y1="{y1:.0f}" x2="{x2:.0f}" y2="{y2:.0f}" stroke="#333" stroke-width="1.2" '
            'marker-end="url(#arrow)"/>')


def _rows(counts: dict[str, Any]) -> list[tuple[str, list[str], list[str] | None]]:
    ident, screen, full = counts["identification"], counts["screening"], counts["fulltext"]
    sources = [f"  {name}: n = {n:,}" for name, n in sorted(ident["by_source"].items())]
    reasons = [f"  {reason}: n = {n:,}" for reason, n in sorted(full["exclusion_reasons"].items())]
    return [
        ("Identification", [f"Records identified from databases ({_n(ident['identified'])})", *sources],
         ["Records removed before screening:", f"  Duplicate records removed ({_n(ident['duplicates_removed'])})",
          "  Records marked as ineligible by",
          f"  automation tools ({_n(screen['marked_ineligible_by_automation'])})"]),
        ("Screening", [f"Records screened ({_n(screen['screened_by_humans'])})",
                       f"  awaiting a human decision: {screen['awaiting_human_decision']:,}"],
         [f"Records excluded ({_n(screen['excluded_by_humans'])})"]),
        ("", [f"Reports sought for retrieval ({_n(full['reports_sought'])})"],
         [f"Reports not retrieved ({_n(full['reports_not_retrieved'])})"]),
        ("", [f"Reports assessed for eligibility ({_n(full['reports_assessed'])})"],
         [f"Reports excluded ({_n(full['reports_excluded'])})", *reasons]),
        ("Included", [f"Studies included in review ({_n(full['studies_included'])})"], None),
    ]


def prisma_svg(counts: dict[str, Any], title: str = "PRISMA 2020 flow diagram") -> str:
    """The diagram of :func:`app.services.prisma.prisma_counts` output."""
    elements: list[str] = []
    y, previous_bottom = 60, None
    for stage, left, right in _rows(counts):
        left_svg, left_h = _box(LEFT_X, y, left, "#eef3fb")
        height = left_h
        elements.append(left_svg)
        if right:
            right_svg, right_h = _box(RIGHT_X, y, right, "#f6f6f6")
            elements.append(right_svg)
            elements.append(_arrow(LEFT_X + BOX_W, y + left_h / 2, RIGHT_X, y + left_h / 2))
            height = max(height, right_h)
        if previous_bottom is not None:
            elements.append(_arrow(LEFT_X + BOX_W / 2, previous_bottom, LEFT_X + BOX_W / 2, y))
        if stage:
            elements.append(f'<text x="20" y="{y + left_h / 2:.0f}" transform="rotate(-90 20 {y + left_h / 2:.0f})" '
                            f'text-anchor="middle" font-size="11" fill="#555">{escape(stage)}</text>')
        previous_bottom = y + left_h
        y += height + ROW_GAP
    total_h = y + 10
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{total_h}" viewBox="0 0 {WIDTH} {total_h}" '
        'font-family="Helvetica, Arial, sans-serif" font-size="13" role="img">\n'
        f'<title>{escape(title)}</title>\n'
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
        'orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#333"/></marker></defs>\n'
        '<rect width="100%" height="100%" fill="#fff"/>\n'
        f'<text x="{WIDTH / 2:.0f}" y="30" text-anchor="middle" font-size="15" font-weight="bold">{escape(title)}'
        '</text>\n' + "\n".join(elements) + "\n</svg>\n"
    )
