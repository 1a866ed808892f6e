"""Progression reads (levels, XP today, recent activity) and trusted XP awards."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from questline.kit.errors import NotFound, Unprocessable
from questline.kit.runtime import Runtime
from questline.pipeline import ingest as events
from questline.pipeline.schemas import Effect
from questline.progression import repository as repo
from questline.progression.models import XpActivity
from questline.progression.processor import AWARD_EVENT
from questline.progression.schemas import (
    CombinedLevelDef,
    LevelCount,
    LevelInfo,
    TrackDef,
    TrackDistribution,
    XpAward,
    XpAwardResult,
    XpBucket,
    level_info,
)
from questline.rules.service import RuleSet


async def levels_of(session: AsyncSession, ruleset: RuleSet, app_id: str, player_id: str,
                    today: str) -> dict[str, LevelInfo]:
    rows = {row.track: row for row in await repo.track_of_player(session, app_id, player_id)}
    infos = {}
    for key, spec in ruleset.of("xp_track").items():
        assert isinstance(spec, TrackDef)
        row = rows.get(key)
        total = row.total_xp if row else 0
        xp_today = row.xp_today if row and row.today == today else 0
        infos[key] = level_info(spec, total, xp_today)
    return infos


def combined_levels_of(ruleset: RuleSet, levels: dict[str, LevelInfo]) -> dict[str, dict[str, object]]:
    totals = {k: v.total_xp for k, v in levels.items()}
    out: dict[str, dict[str, object]] = {}
    for key, spec in ruleset.of("combined_level").items():
        assert isinstance(spec, CombinedLevelDef)
        level = spec.level_for(totals)
        nxt = spec.levels[level] if level < len(spec.levels) else None
        out[key] = {"level": level, "name": spec.levels[level - 1].name,
                    "next": {"level": nxt.level, "name": nxt.name, "requires": nxt.requires} if nxt else None}
    return out


async def recent_activity(session: AsyncSession, app_id: str, player_id: str, limit: int = 50) -> list[XpActivity]:
    return list(await repo.recent_activities(session, app_id, player_id, limit))


async def queue_award(session: AsyncSession, runtime: Runtime, ruleset: RuleSet, app_id: str, player_id: str,
                      award: XpAward, idempotency_key: str) -> list[int]:
    """A trusted XP award becomes an event in the log, so replay rebuilds it like any other."""
    if award.track not in ruleset.of("xp_track"):
        raise Unprocessable(f"unknown track {award.track!r}", code="unknown_track")
    return await events.append_internal(
        session, runtime, app_id=app_id, player_id=player_id, event_id=f"xp-award:{idempotency_key}",
        type_=AWARD_EVENT, data={"track": award.track, "amount": award.amount, "reason": award.reason},
    )


def summarize_award(player_id: str, award: XpAward, processed: bool, effects: list[Effect]) -> XpAwardResult:
    earned, total, level = 0, 0, 0
    gained: list[int] = []
    points: dict[str, int] = {}
    for effect in effects:
        data = effect.data
        if effect.type == "xp.earned" and data.get("track") == award.track:
            earned += int(data["amount"])
            total = int(data["total"])
        elif effect.type == "level.up" and data.get("track") == award.track:
            gained += list(range(int(data["from"]) + 1, int(data["to"]) + 1))
            level = int(data["to"])
        elif effect.type == "points.credited":
            points[str(data["currency"])] = points.get(str(data["currency"]), 0) + int(data["amount"])
    return XpAwardResult(player_id=player_id, track=award.track, xp_earned=earned, total_xp=total,
                         level=level or 0, level_up=bool(gained), levels_gained=gained, points_awarded=points,
                         processed=processed)


async def distribution(session: AsyncSession, ruleset: RuleSet, app_id: str, track: str,
                       buckets: int) -> TrackDistribution:
    """Players per level (every level from 1 to the highest reached, zeros included) and per XP bucket,
    counting the players who have earned XP on the track."""
    spec = ruleset.of("xp_track").get(track)
    if not isinstance(spec, TrackDef):
        raise NotFound(f"xp_track {track!r} not found", code="definition_not_found")
    rows = await repo.level_xp_counts(session, app_id, track, buckets)
    per_level: dict[int, int] = {}
    per_bucket: dict[int, int] = {}
    width = rows[0][3] if rows else 1
    for level, bucket, players, _ in rows:
        per_level[level] = per_level.get(level, 0) + players
        per_bucket[bucket] = per_bucket.get(bucket, 0) + players
    top_level = max(per_level, default=0)
    top_bucket = max(per_bucket, default=-1)
    return TrackDistribution(
        track=track, players=sum(per_level.values()),
        levels=[LevelCount(level=n, name=spec.level_names.get(n), players=per_level.get(n, 0))
                for n in range(1, top_level + 1)],
        xp=[XpBucket(from_xp=b * width, to_xp=(b + 1) * width - 1, players=per_bucket.get(b, 0))
            for b in range(top_bucket + 1)],
    )
