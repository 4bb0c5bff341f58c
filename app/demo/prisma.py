"""A PRISMA-style flow diagram of a screening run, as hand-written SVG (no plotting dependency).

Main column: identified → screened → included by both models → sent on to full text / human review; side boxes:
duplicates removed (and unusable records skipped), excluded by both models, conflicts and failures sent to a human.
"""

from __future__ import annotations

from dataclasses import dataclass
from xml.sax.saxutils import escape

BOX_W, BOX_H = 330, 74
LEFT_X, RIGHT_X = 30, 420
WIDTH, HEIGHT = 780, 560


@dataclass(frozen=True)
class PrismaCounts:
    """The numbers in the diagram."""

    identified: int
    duplicates: int
    skipped: int
    screened: int
    excluded: int
    conflicts: int
    failed: int
    included: int
    source: str
    models: str


def _box(x: int, y: int, lines: list[str], fill: str = "#ffffff", bold_first: bool = True) -> str:
    parts = [f'<rect x="{x}" y="{y}" width="{BOX_W}" height="{BOX_H}" rx="6" ry="6" '
             f'fill="{fill}" stroke="#333333" stroke-width="1.5"/>']
    line_h = 17
    top = y + BOX_H / 2 - (len(lines) - 1) * line_h / 2 + 5
    for i, line in enumerate(lines):
        weight = ' font-weight="bold"' if (i == 0 and bold_first) else ' font-size="12"'
        parts.append(f'<text x="{x + BOX_W / 2:.0f}" y="{top + i * line_h:.0f}" text-anchor="middle"{weight}>'
                     f'{escape(line)}</text>')
    return "\n".join(parts)


def _arrow(x1: float, y1: float, x2: float, y2: float) -> str:
    return (f'<line x1="{x1:.0f}" y1="{y1:.0f}" x2="{x2:.0f}" y2="{y2:.0f}" stroke="#333333" '
            f'stroke-width="1.5" marker-end="url(#arrow)"/>')


def prisma_svg(counts: PrismaCounts) -> str:
    """The diagram as an SVG document."""
    rows = [40, 170, 300, 430]
    mid_left = LEFT_X + BOX_W / 2
    human = counts.conflicts + counts.failed
    elements = [
        _box(LEFT_X, rows[0], ["Records identified", f"n = {counts.identified:,}", counts.source], "#eef3fb"),
        _box(RIGHT_X, rows[0], ["Records removed before screening",
                                f"duplicates: n = {counts.duplicates:,}",
                                f"unusable (skipped at import): n = {counts.skipped:,}"], "#f6f6f6"),
        _box(LEFT_X, rows[1], ["Records screened (title/abstract)", f"n = {counts.screened:,}",
                               f"by two models: {counts.models}"], "#eef3fb"),
        _box(RIGHT_X, rows[1], ["Excluded by both models", f"n = {counts.excluded:,}"], "#f6f6f6"),
        _box(LEFT_X, rows[2], ["Included by both models", f"n = {counts.included:,}"], "#e9f6ec"),
        _box(RIGHT_X, rows[2], ["Sent to human review", f"conflicts (models disagree): n = {counts.conflicts:,}",
                                f"failed items: n = {counts.failed:,}"], "#fff4e0"),
        _box(LEFT_X, rows[3], ["Records for full-text assessment",
                               f"n = {counts.included + human:,} (until humans resolve the {human:,})",
                               "included + sent to human review"], "#e9f6ec"),
        _arrow(mid_left, rows[0] + BOX_H, mid_left, rows[1]),
        _arrow(LEFT_X + BOX_W, rows[0] + BOX_H / 2, RIGHT_X, rows[0] + BOX_H / 2),
        _arrow(mid_left, rows[1] + BOX_H, mid_left, rows[2]),
        _arrow(LEFT_X + BOX_W, rows[1] + BOX_H / 2, RIGHT_X, rows[1] + BOX_H / 2),
        _arrow(LEFT_X + BOX_W, rows[1] + BOX_H * 0.8, RIGHT_X, rows[2] + BOX_H / 2),
        _arrow(mid_left, rows[2] + BOX_H, mid_left, rows[3]),
        _arrow(RIGHT_X + BOX_W / 2, rows[2] + BOX_H, LEFT_X + BOX_W, rows[3] + BOX_H / 2),
    ]
    labels = [("Identification", rows[0]), ("Screening", rows[1]), ("Decision", rows[2]), ("Next", rows[3])]
    side = "\n".join(
        f'<text x="16" y="{y + BOX_H / 2:.0f}" transform="rotate(-90 16 {y + BOX_H / 2:.0f})" '
        f'text-anchor="middle" font-size="11" fill="#555555">{escape(name)}</text>'
        for name, y in labels
    )
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" font-family="Helvetica, Arial, sans-serif" font-size="13">\n'
        f'<title>PRISMA-style flow of a litscreen title/abstract screening run</title>\n'
        f'<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
        f'orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#333333"/></marker></defs>\n'
        f'<rect width="100%" height="100%" fill="#ffffff"/>\n'
        f'<text x="{WIDTH / 2:.0f}" y="24" text-anchor="middle" font-size="15" font-weight="bold">'
        f'Title/abstract screening with two LLMs (litscreen)</text>\n'
        f'{side}\n' + "\n".join(elements) + "\n"
        f'<text x="{WIDTH / 2:.0f}" y="{HEIGHT - 12}" text-anchor="middle" font-size="11" fill="#555555">'
        f'{escape("Decision rule: both include → include; both exclude → exclude; otherwise conflict → human.")}'
        f'</text>\n</svg>\n'
    )
