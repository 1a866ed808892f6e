"""The leaderboards area's services, as routes and other areas (competitions) use them.

The rules live by concern in their own modules; this module is the area's one entry point:

- ``definitions``: a board as reads see it (``BoardInfo``), compiled per rule-set version;
- ``boards``: the engine's rank index with lazy, locked rebuilds from the database;
- ``privacy``: what a viewer may see of a board and how players are named;
- ``reads``: the top, a player's place and neighbours, archived periods;
- ``rollover``: ends of periods (archives, final standings, removed entries);
- ``friends``: friendships;
- ``scoring`` (used by the processors): events folded into scores.
"""

from __future__ import annotations

from questline.leaderboards.boards import READY_TTL, Boards, boards_of, forget_after_commit
from questline.leaderboards.definitions import PERIOD_KEY, BoardInfo, board_info, list_boards
from questline.leaderboards.friends import (
    FRIENDS,
    MAX_FRIENDS,
    befriend,
    cached_friends,
    forget_player,
    friends_of,
    unfriend,
)
from questline.leaderboards.privacy import ANONYMOUS, Lens
from questline.leaderboards.reads import MAX_AROUND, Reading, archive, open_reading, player_place, top
from questline.leaderboards.rollover import Standing, archive_period, remove_entries, roll_over, standings
from questline.leaderboards.views import ArchiveView, BoardView, Row, to_json

__all__ = [
    "ANONYMOUS", "FRIENDS", "MAX_AROUND", "MAX_FRIENDS", "PERIOD_KEY", "READY_TTL", "ArchiveView", "BoardInfo",
    "BoardView", "Boards", "Lens", "Reading", "Row", "Standing", "archive", "archive_period", "befriend",
    "board_info", "boards_of", "cached_friends", "forget_after_commit", "forget_player", "friends_of", "list_boards",
    "open_reading", "player_place", "remove_entries", "roll_over", "standings", "to_json", "top", "unfriend",
]
