"""What a viewer may see of a board's entries, and how each player is named.

Privacy applies to every read, for the viewer it is made for (a player token's own player,
or the ``viewer`` a server names; nobody for a publishable key):

- ``private`` players are shown to nobody but themselves;
- ``friends_only`` players to their friends and themselves;
- ``show_on_global_leaderboard = false`` keeps a player off global boards (but for themselves);
- names follow ``display_name_type``; ``anonymous`` shows "Anonymous player" and no player id.

How players are shown and who their friends are come from the process's caches
(``players.shown``, ``leaderboards.friends``), dropped whenever they change.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from questline.leaderboards.friends import cached_friends
from questline.leaderboards.views import Row
from questline.players import service as players
from questline.players.repository import Shown

ANONYMOUS = "Anonymous player"


@dataclass
class Lens:
    """What one viewer may see of a board's entries."""

    session: AsyncSession
    app_id: str
    viewer: str | None
    scope: str
    _friends: set[str] | None = None
    _players: dict[str, Shown] = field(default_factory=dict)
    # Some player asked about has no row (yet): what this lens showed may change without any
    # cache invalidation telling it, so it is not kept (``pages``).
    incomplete: bool = False

    async def friends(self) -> set[str]:
        if self._friends is None:
            self._friends = set(await cached_friends(self.session, self.app_id, self.viewer)) if self.viewer else set()
        return self._friends

    async def load(self, player_ids: Sequence[str]) -> None:
        """How these players are shown (from the process's cache of it; one query for those not in it)."""
        wanted = [*player_ids, self.viewer] if self.viewer and self.viewer not in self._players else player_ids
        missing = [p for p in wanted if p not in self._players]
        if missing:
            found = await players.shown_of(self.session, self.app_id, missing)
            self._players.update(found)
            if len(found) < len(set(missing)):
                self.incomplete = True

    def settled(self, player_id: str) -> bool | None:
        """Whether the viewer may see this player, or None when it depends on their friends."""
        if player_id == self.viewer:
            return True
        player = self._players.get(player_id)
        if player is None:
            return False
        if self.scope == "global" and not player.show_on_global_leaderboard:
            return False
        if player.leaderboard_visibility == "private":
            return False
        if player.leaderboard_visibility == "friends_only":
            return None if self._friends is None else player_id in self._friends
        return True

    def friends_see(self, player_id: str) -> bool:
        """Whether this player is shown to their friends only (on this board)."""
        player = self._players.get(player_id)
        if player is None or (self.scope == "global" and not player.show_on_global_leaderboard):
            return False
        return player.leaderboard_visibility == "friends_only"

    async def visible(self, player_id: str) -> bool:
        known = self.settled(player_id)
        if known is None:
            return player_id in await self.friends()
        return known

    def show(self, rank: int, player_id: str, score: int, reached_at: datetime) -> Row:
        player = self._players.get(player_id)
        me = player_id == self.viewer
        kind = player.display_name_type if player else "anonymous"
        if kind == "anonymous":
            name = ANONYMOUS
        elif kind == "real_name" and player is not None and player.real_name:
            name = player.real_name
        else:
            assert player is not None
            name = player.username or player.display_name or player.real_name or player_id
        return Row(rank, player_id if me or kind != "anonymous" else None, name, score, reached_at, me)
