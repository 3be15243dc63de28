"""Charts as plain SVG text for an ``HTML`` widget: light on phones, no JavaScript, no library.

Rule: every chart is an ``<svg role="img">`` with a ``<title>`` and an ``aria-label``, scales to the
screen width (``viewBox``, no fixed width), and is always shown next to a text table with the same
numbers, which is what a screen reader reads.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

#: Colour-blind-safe palette (Okabe and Ito), one per series.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#D55E00", "#56B4E9")


def radar(
    axes: Sequence[str],
    series: Sequence[tuple[str, Sequence[float]]],
    maximum: float,
    title: str,
) -> str:
    """A radar chart: one axis per label in ``axes``, one polygon per ``(name, values)``."""
    size, centre, radius = 320, 160, 105
    count = len(axes)

    def point(index: int, value: float) -> tuple[float, float]:
        angle = -math.pi / 2 + 2 * math.pi * index / count
        r = radius * max(0.0, min(value, maximum)) / maximum if maximum else 0
        return centre + r * math.cos(angle), centre + r * math.sin(angle)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {size} {size}" role="img" '
        f'aria-label="{escape(title)}" style="width:100%;max-width:{size}px;height:auto">',
        f"<title>{escape(title)}</title>",
    ]
    for ring in range(1, int(maximum) + 1):
        ring_points = " ".join(
            f"{x:.1f},{y:.1f}" for x, y in (point(i, ring) for i in range(count))
        )
        parts.append(
            f'<polygon points="{ring_points}" fill="none" stroke="#ccc" stroke-width="1"/>'
        )
    for index, label in enumerate(axes):
        x, y = point(index, maximum)
        lx, ly = point(index, maximum * 1.28)
        anchor = "middle" if abs(lx - centre) < 10 else ("start" if lx > centre else "end")
        parts.append(f'<line x1="{centre}" y1="{centre}" x2="{x:.1f}" y2="{y:.1f}" stroke="#ccc"/>')
        parts.append(
            f'<text x="{lx:.1f}" y="{ly:.1f}" font-size="11" text-anchor="{anchor}" '
            f'dominant-baseline="middle">{escape(label)}</text>'
        )
    for number, (name, values) in enumerate(series):
        colour = PALETTE[number % len(PALETTE)]
        poly = " ".join(f"{x:.1f},{y:.1f}" for x, y in (point(i, v) for i, v in enumerate(values)))
        parts.append(
            f'<polygon points="{poly}" fill="{colour}" fill-opacity="0.15" stroke="{colour}" '
            f'stroke-width="2"><title>{escape(name)}</title></polygon>'
        )
    legend_y = size - 8 - 14 * (len(series) - 1)
    for number, (name, _values) in enumerate(series):
        colour = PALETTE[number % len(PALETTE)]
        y = legend_y + 14 * number
        parts.append(f'<rect x="6" y="{y - 9}" width="10" height="10" fill="{colour}"/>')
        parts.append(f'<text x="20" y="{y}" font-size="11">{escape(name)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def bars(items: Sequence[tuple[str, float]], maximum: float, title: str, unit: str = "") -> str:
    """Horizontal bars, one per ``(label, value)``; labels above the bars so they fit a phone."""
    width, bar_height, gap = 320, 14, 30
    height = gap * len(items) + 6
    top = max(maximum, 1e-9)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(title)}" style="width:100%;max-width:{width}px;height:auto">',
        f"<title>{escape(title)}</title>",
    ]
    for index, (label, value) in enumerate(items):
        y = gap * index + 4
        length = (width - 60) * max(0.0, min(value, top)) / top
        colour = PALETTE[index % len(PALETTE)]
        parts.append(f'<text x="0" y="{y + 9}" font-size="11">{escape(label)}</text>')
        parts.append(
            f'<rect x="0" y="{y + 13}" width="{length:.1f}" height="{bar_height}" fill="{colour}"/>'
        )
        parts.append(
            f'<text x="{length + 4:.1f}" y="{y + 24}" font-size="11">{value:g}{escape(unit)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def timeline(segments: Sequence[tuple[str, float, bool]], title: str) -> str:
    """One strip: a block per ``(label, minutes, highlighted)``; highlighted blocks in orange."""
    width, height = 320, 34
    total = sum(minutes for _label, minutes, _h in segments) or 1
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(title)}" style="width:100%;max-width:{width}px;height:auto">',
        f"<title>{escape(title)}</title>",
    ]
    x = 0.0
    for label, minutes, highlighted in segments:
        span = width * minutes / total
        colour = "#D55E00" if highlighted else "#0072B2"
        parts.append(
            f'<rect x="{x:.1f}" y="4" width="{max(span - 1, 0.5):.1f}" height="26" fill="{colour}">'
            f"<title>{escape(label)}</title></rect>"
        )
        x += span
    parts.append("</svg>")
    return "".join(parts)


def table(caption: str, header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """An HTML table with a caption: the text alternative of a chart (cells are escaped)."""
    head = "".join(f'<th scope="col">{escape(str(h))}</th>' for h in header)
    body = "".join(
        "<tr>"
        + f'<th scope="row">{escape(str(r[0]))}</th>'
        + "".join(f"<td>{escape(str(c))}</td>" for c in r[1:])
        + "</tr>"
        for r in rows
    )
    # The box scrolls sideways if the table is still too wide: words are never broken mid-word.
    return (
        f'<div class="atelier-table-box" role="region" tabindex="0" aria-label="{escape(caption)}">'
        f"<table><caption>{escape(caption)}</caption>"
        f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>"
    )
