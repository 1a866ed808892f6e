"""Recomputing expected state straight from the event log, and snapshotting derived state."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import sqlalchemy as sa

from questline.kit.periods import period_keys, zone
from questline.kit.runtime import Runtime
from questline.pipeline.models import EventRecord
from questline.progression.schemas import Curve

DERIVED = ("player_stats", "player_tracks", "xp_daily")


async def derived_state(runtime: Runtime, app_id: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every derived row of an app, minus bookkeeping timestamps, in a stable order."""
    out = {}
    async with runtime.read_sessions() as session:
        for table in DERIVED:
            cols = {"player_stats": "player_id, stat, period_key, value, samples",
                    "player_tracks": "player_id, track, total_xp, level, xp_today, today",
                    "xp_daily": "player_id, rule, day, earned"}[table]
            rows = await session.execute(sa.text(f"SELECT {cols} FROM {table} WHERE app_id = :a ORDER BY {cols}"),
                                         {"a": app_id})
            out[table] = [tuple(r) for r in rows]
    return out


async def expected_from_log(runtime: Runtime, app_id: str, timezones: dict[str, str]) -> dict[str, dict[str, int]]:
    """What BASIC_CONFIG must produce, computed from the raw log without the engine's code paths."""
    wins: dict[str, int] = defaultdict(int)
    score: dict[str, int] = defaultdict(int)
    per_day: dict[tuple[str, str], int] = defaultdict(int)
    async with runtime.read_sessions() as session:
        rows = await session.execute(
            sa.select(EventRecord.player_id, EventRecord.data, EventRecord.occurred_at)
            .where(EventRecord.app_id == app_id, EventRecord.type == "match.won")
        )
        for player, data, occurred in rows:
            day = period_keys(occurred, zone(timezones.get(player, "UTC")))["day"]
            wins[player] += 1
            score[player] += int(data["score"])
            per_day[(player, day)] += 1
    xp: dict[str, int] = defaultdict(int)
    for (player, _), n in per_day.items():
        xp[player] += min(60 * n, 150)
    starts = Curve(type="quadratic", base=100).starts(100)
    level = {p: max(i + 1 for i, s in enumerate(starts) if total >= s) for p, total in xp.items()}
    return {"wins": dict(wins), "score": dict(score), "xp": dict(xp), "level": level,
            "points": {p: 200 * (lv - 1) for p, lv in level.items()}}
