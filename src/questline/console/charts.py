"""Charts drawn as SVG on the server, by us: bars for counts per bucket, a line for values over time.

Each chart carries a title and a description for screen readers (``role="img"``), and every bar or
point a ``<title>`` with its exact value; the numbers are also in a table next to the chart.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from markupsafe import Markup

WIDTH, HEIGHT, LEFT, BOTTOM, TOP = 640, 220, 56, 28, 12


def _nice_top(value: int) -> int:
    """The smallest 1, 2 or 5 × 10^n at or above ``value`` (the axis' top)."""
    top = 1
    while True:
        for step in (1, 2, 5):
            if step * top >= value:
                return step * top
        top *= 10


def _frame(title: str, description: str, top: int, body: list[str], labels: list[str]) -> Markup:
    plot_h = HEIGHT - BOTTOM - TOP
    axis = [f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{TOP + plot_h}" class="axis"/>',
            f'<line x1="{LEFT}" y1="{TOP + plot_h}" x2="{WIDTH}" y2="{TOP + plot_h}" class="axis"/>']
    for fraction in (0, 0.5, 1):
        y = TOP + plot_h - fraction * plot_h
        value = int(top * fraction)
        axis.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" class="tick">{value:,}</text>')
        if fraction:
            axis.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH}" y2="{y:.1f}" class="grid"/>')
    ident = "chart-" + "".join(c if c.isalnum() else "-" for c in title.lower())
    return Markup(
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-labelledby="{ident}-t {ident}-d" '
        f'xmlns="http://www.w3.org/2000/svg"><title id="{ident}-t">{escape(title)}</title>'
        f'<desc id="{ident}-d">{escape(description)}</desc>{"".join(axis)}{"".join(body)}{"".join(labels)}</svg>')


def bars(title: str, points: Sequence[tuple[str, int]], unit: str = "") -> Markup:
    """One bar per (label, value); labels are thinned out so that they never overlap."""
    plot_w, plot_h = WIDTH - LEFT - 8, HEIGHT - BOTTOM - TOP
    top = _nice_top(max([v for _, v in points] + [1]))
    slot = plot_w / max(len(points), 1)
    every = max(1, -(-len(points) // max(int(plot_w / 60), 1)))  # ceil: at most one label per 60 px
    body, labels = [], []
    for i, (label, value) in enumerate(points):
        h = plot_h * max(value, 0) / top
        x = LEFT + 4 + i * slot
        body.append(f'<rect x="{x:.1f}" y="{TOP + plot_h - h:.1f}" width="{max(slot - 4, 1):.1f}" height="{h:.1f}" '
                    f'class="bar"><title>{escape(label)}: {value:,}{escape(unit)}</title></rect>')
        if i % every == 0:
            labels.append(f'<text x="{x + slot / 2 - 2:.1f}" y="{HEIGHT - 10}" text-anchor="middle" class="tick">'
                          f'{escape(label)}</text>')
    total, largest = sum(v for _, v in points), max([0] + [v for _, v in points])
    return _frame(title, f"{len(points)} bars, {total:,}{unit} in all, the largest {largest:,}", top, body, labels)


def line(title: str, points: Sequence[tuple[str, int]], unit: str = "") -> Markup:
    """A line through (label, value) points in order, each point marked."""
    plot_w, plot_h = WIDTH - LEFT - 16, HEIGHT - BOTTOM - TOP
    top = _nice_top(max([v for _, v in points] + [1]))
    step = plot_w / max(len(points) - 1, 1)
    coords = [(LEFT + 8 + i * step, TOP + plot_h - plot_h * max(v, 0) / top) for i, (_, v) in enumerate(points)]
    body = []
    if len(coords) > 1:
        body.append('<polyline class="line" fill="none" points="'
                    + " ".join(f"{x:.1f},{y:.1f}" for x, y in coords) + '"/>')
    every = max(1, -(-len(points) // max(int(plot_w / 70), 1)))
    labels = []
    for i, ((label, value), (x, y)) in enumerate(zip(points, coords, strict=True)):
        body.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" class="point"><title>{escape(label)}: {value:,}'
                    f'{escape(unit)}</title></circle>')
        if i % every == 0:
            labels.append(f'<text x="{x:.1f}" y="{HEIGHT - 10}" text-anchor="middle" class="tick">'
                          f'{escape(label)}</text>')
    last = points[-1][1] if points else 0
    return _frame(title, f"{len(points)} points; the last {last:,}{unit}", top, body, labels)
