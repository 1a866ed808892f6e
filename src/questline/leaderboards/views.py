"""What leaderboard reads answer: plain objects serialized once by orjson (reads make hundreds of rows).

Not ``slots=True``: orjson serializes a slotted dataclass through a slower path (about five times
slower for a 100-row page, measured with ``bench/leaderboard_reads.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson


@dataclass
class Row:
    """One shown entry (the ``Row`` schema); a plain object: reads make hundreds per request."""

    rank: int
    player_id: str | None
    display_name: str
    score: int
    reached_at: datetime
    is_me: bool = False


@dataclass
class BoardView:
    """A read's reply (the ``BoardPage`` schema), serialized by orjson."""

    board: str
    name: str | None
    scope: str
    partition: str | None
    period: str
    period_key: str
    timezone: str
    order: str
    resets_at: datetime | None
    ranked: int
    items: list[Row]
    next_cursor: str | None = None
    me: Row | None = None


@dataclass
class ArchiveView:
    """A closed period's standings (the ``ArchivePage`` schema)."""

    board: str
    period_key: str
    partition: str | None
    archived_at: datetime
    items: list[Row]
    next_cursor: str | None = None


def _rendered(value: Any) -> Any:
    """Rows whose JSON was made once (``pages.RenderedRows``) are spliced in as it; other
    subclasses of built-in types (which ``OPT_PASSTHROUGH_SUBCLASS`` sends here) as their base."""
    fragment = getattr(value, "fragment", None)
    if isinstance(fragment, orjson.Fragment):
        return fragment
    if isinstance(value, str):
        return str(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, list):
        return list(value)
    if isinstance(value, dict):
        return dict(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def to_json(view: BoardView | ArchiveView) -> bytes:
    return orjson.dumps(view, default=_rendered, option=orjson.OPT_UTC_Z | orjson.OPT_PASSTHROUGH_SUBCLASS)
