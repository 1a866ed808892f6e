"""Boards as reads see them: a definition (or a competition) compiled to a ``BoardInfo``, per rule-set version."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from questline.kit.errors import NotFound
from questline.kit.periods import zone
from questline.kit.runtime import Runtime
from questline.leaderboards.index import BoardRef
from questline.leaderboards.schemas import BoardSummary, LeaderboardDef, PartitionScope
from questline.leaderboards.timing import CUSTOM, next_reset, period_key
from questline.rules.service import RuleSet, ruleset_cache

PERIOD_KEY = re.compile(r"^[A-Za-z0-9-]{1,32}$")
_PERIOD_SHAPE = {"day": re.compile(r"^\d{4}-\d{2}-\d{2}$"), "week": re.compile(r"^\d{4}-W\d{2}$"),
                 "month": re.compile(r"^\d{4}-\d{2}$"), "custom": re.compile(r"^custom$")}


@dataclass(frozen=True)
class BoardInfo:
    """What reads need to know about a board, whether a definition's or a competition's."""

    board: str
    name: str | None
    scope: str  # global | partition | friends
    partition_attr: str | None
    period: str
    timezone: str
    descending: bool
    min_score: int | None
    ends_at: datetime | None = None

    @classmethod
    def of(cls, key: str, spec: LeaderboardDef) -> BoardInfo:
        attr = spec.scope.attribute if isinstance(spec.scope, PartitionScope) else None
        return cls(key, spec.name, spec.scope.type, attr, spec.period, spec.timezone, spec.order == "desc",
                   spec.min_score, spec.ends_at)

    def period_key_at(self, now: datetime) -> str:
        return period_key(self.period, now, zone(self.timezone))

    def ref(self, app_id: str, key: str) -> BoardRef:
        return BoardRef(app_id, self.board, key, self.descending, self.min_score)

    def resets_at(self, now: datetime) -> datetime | None:
        return next_reset(self.period, now, zone(self.timezone), self.ends_at)

    def is_closed(self, key: str, now: datetime) -> bool:
        if self.period == "all":
            return False
        if not _PERIOD_SHAPE[self.period].match(key):
            return True  # the definition changed period: what is left of the old one is over
        if self.period == CUSTOM:
            return self.ends_at is not None and now >= self.ends_at
        return key < self.period_key_at(now)


async def board_info(session: AsyncSession, runtime: Runtime, app_id: str, key: str) -> BoardInfo:
    """A board's definition, as reads need it (compiled once per rule-set version)."""
    ruleset = await ruleset_cache(runtime).get(session, app_id)
    info = ruleset.memo("leaderboards.infos", _infos).get(key)
    if info is None:
        raise NotFound(f"leaderboard {key!r} not found", code="leaderboard_not_found")
    return info


def _infos(ruleset: RuleSet) -> dict[str, BoardInfo]:
    out = {}
    for key, spec in ruleset.of("leaderboard").items():
        assert isinstance(spec, LeaderboardDef)
        out[key] = BoardInfo.of(key, spec)
    return out


async def list_boards(session: AsyncSession, runtime: Runtime, app_id: str) -> list[BoardSummary]:
    ruleset = await ruleset_cache(runtime).get(session, app_id)
    now = runtime.clock.now()
    out = []
    for key, spec in sorted(ruleset.of("leaderboard").items()):
        assert isinstance(spec, LeaderboardDef)
        info = BoardInfo.of(key, spec)
        out.append(BoardSummary(board=key, name=info.name, scope=info.scope, period=info.period,
                                period_key=info.period_key_at(now), timezone=info.timezone,
                                resets_at=info.resets_at(now)))
    return out
