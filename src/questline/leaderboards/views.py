"""What leaderboard reads answer: plain objects serialized once by orjson (reads make hundreds of rows).

Not ``slots=True``: orjson serializes a slotted dataclass through a slower path (about five times
slower for a 100-row page, measured with ``bench/leaderboard_reads.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

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


def to_json(view: BoardView | ArchiveView) -> bytes:
    return orjson.dumps(view, option=orjson.OPT_UTC_Z)
