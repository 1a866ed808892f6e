"""Drawing a card: a 1200×630 PNG (the size Open Graph and Twitter's large card expect).

Pure functions of the card's text, so the same card always draws the same bytes. The font is
the scalable one Pillow ships (``ImageFont.load_default(size=…)``): nothing is fetched, and a
glyph it lacks draws as a box rather than failing.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # Pillow is imported on the first card drawn, not when the engine starts (idle memory)
    from PIL import Image, ImageFont

    Font = ImageFont.FreeTypeFont | ImageFont.ImageFont

WIDTH, HEIGHT = 1200, 630
_MARGIN = 64
_EMBLEM = 280  # the circle's diameter
STAR = "★"
_TEXT_LEFT = _MARGIN + _EMBLEM + 56
_TEXT_WIDTH = WIDTH - _TEXT_LEFT - _MARGIN
# Top and bottom colours of the background, and the accent, per kind.
_PALETTE: dict[str, tuple[tuple[int, int, int], tuple[int, int, int], tuple[int, int, int]]] = {
    "achievement": ((40, 22, 84), (92, 44, 160), (255, 200, 66)),
    "competition": ((10, 40, 70), (20, 96, 150), (120, 230, 255)),
    "streak": ((84, 24, 10), (190, 70, 20), (255, 214, 120)),
    "level": ((8, 60, 44), (24, 140, 96), (170, 255, 200)),
}


@dataclass(frozen=True)
class Drawing:
    kind: str
    label: str  # "Achievement unlocked"
    title: str  # "Maya unlocked First Blood"
    description: str
    emblem: str  # short: STAR (drawn as a shape), "#1", "12"
    site_name: str


@cache
def _font(size: int) -> Font:
    from PIL import ImageFont

    return ImageFont.load_default(size=size)


def _fit(text: str, font: Font, width: int) -> str:
    """``text`` cut (with an ellipsis) to fit ``width`` pixels."""
    if font.getlength(text) <= width:
        return text
    while text and font.getlength(text + "…") > width:
        text = text[:-1]
    return text.rstrip() + "…"


def wrap(text: str, font: Font, width: int, max_lines: int) -> list[str]:
    """Greedy word wrap to ``width`` pixels; over-long words are cut; the last line ends in … if more was left."""
    lines: list[str] = []
    line = ""
    words = text.split()
    for index, word in enumerate(words):
        candidate = f"{line} {word}" if line else word
        if font.getlength(candidate) <= width:
            line = candidate
            continue
        if line:
            lines.append(line)
        line = word if font.getlength(word) <= width else _fit(word, font, width)
        if len(lines) == max_lines:
            break
        if len(lines) == max_lines - 1 and index < len(words) - 1:
            rest = " ".join(words[index:])
            lines.append(_fit(rest, font, width))
            return lines
    if line and len(lines) < max_lines:
        lines.append(line)
    return lines[:max_lines]


def _star(centre: tuple[float, float], outer: float, inner: float) -> list[tuple[float, float]]:
    """A five-pointed star's corners, point up."""
    points = []
    for index in range(10):
        radius = outer if index % 2 == 0 else inner
        angle = -math.pi / 2 + index * math.pi / 5
        points.append((centre[0] + radius * math.cos(angle), centre[1] + radius * math.sin(angle)))
    return points


def _background(kind: str) -> Image.Image:
    from PIL import Image

    top, bottom, _ = _PALETTE[kind]
    # A vertical gradient: one pixel column, resized (fast, and identical every time).
    column = Image.new("RGB", (1, HEIGHT))
    column.putdata([tuple(top[c] + (bottom[c] - top[c]) * y // (HEIGHT - 1) for c in range(3)) for y in range(HEIGHT)])
    return column.resize((WIDTH, HEIGHT))


def draw(card: Drawing) -> bytes:
    """The card as PNG bytes."""
    from PIL import ImageDraw

    image = _background(card.kind)
    pen = ImageDraw.Draw(image)
    accent = _PALETTE[card.kind][2]

    # The emblem: a ring with a short mark in it, centred on the left.
    top = (HEIGHT - _EMBLEM) // 2
    box = (_MARGIN, top, _MARGIN + _EMBLEM, top + _EMBLEM)
    pen.ellipse(box, outline=accent, width=12)
    centre = ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2)
    if card.emblem == STAR:  # drawn, not a glyph: the bundled font has no star
        pen.polygon(_star(centre, outer=90, inner=38), fill=accent)
    else:
        size = 150 if len(card.emblem) <= 2 else 110 if len(card.emblem) <= 3 else 80
        emblem = _fit(card.emblem, _font(size), _EMBLEM - 60)
        pen.text(centre, emblem, font=_font(size), fill=accent, anchor="mm")

    # The text: a label, the title (up to three lines), the description (up to three lines).
    y = 96
    pen.text((_TEXT_LEFT, y), _fit(card.label.upper(), _font(30), _TEXT_WIDTH), font=_font(30), fill=accent)
    y += 60
    for line in wrap(card.title, _font(60), _TEXT_WIDTH, 3):
        pen.text((_TEXT_LEFT, y), line, font=_font(60), fill=(255, 255, 255))
        y += 72
    y += 16
    for line in wrap(card.description, _font(34), _TEXT_WIDTH, 3):
        pen.text((_TEXT_LEFT, y), line, font=_font(34), fill=(225, 230, 240))
        y += 44

    # The footer: the app's name, and a rule in the accent colour.
    pen.rectangle((0, HEIGHT - 12, WIDTH, HEIGHT), fill=accent)
    pen.text((_MARGIN, HEIGHT - 70), _fit(card.site_name, _font(32), WIDTH - 2 * _MARGIN), font=_font(32),
             fill=(255, 255, 255))

    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()
