"""Achievement backfill: evaluate new or changed achievements for players who already qualify."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from questline.achievements import repository as repo
from questline.achievements.processor import BACKFILL_EVENT, AchievementsProcessor
from questline.achievements.schemas import AchievementDef
from questline.kit.db import unit_of_work
from questline.kit.errors import NotFound
from questline.kit.jobs import Job, Scheduler, every
from questline.kit.pagination import PageParams
from questline.kit.periods import zone
from questline.kit.runtime import Runtime
from questline.pipeline.batch import Batch, EventView, PlayerState, Processor
from questline.pipeline.models import LIVE, LogEvent, partition_of
from questline.pipeline.states import processors_of
from questline.pipeline.worker import lock_partitions
from questline.players import service as players
from questline.rules import service as rules
from questline.rules.service import registry_of, ruleset_cache

BACKFILL_PAGE = 200
BACKFILL_PLAYERS_PER_RUN = 2000

# Backfill ---------------------------------------------------------------------------------------


def _steps(runtime: Runtime) -> tuple[list[Processor], AchievementsProcessor]:
    steps = processors_of(runtime)
    mine = next((s for s in steps if isinstance(s, AchievementsProcessor)), None)
    if mine is None:  # pragma: no cover - a wiring bug
        raise RuntimeError("the achievements processor is not installed")
    return steps, mine


@dataclass
class Chunk:
    players: int
    unlocked: dict[str, int]  # achievement -> players who got it
    next_cursor: str | None

    @property
    def total(self) -> int:
        return sum(self.unlocked.values())


async def backfill_page(session: AsyncSession, runtime: Runtime, app_id: str, keys: set[str] | None,
                        cursor: str | None, limit: int = BACKFILL_PAGE) -> Chunk:
    """Evaluate achievements (``keys``, or all) for one page of the app's players against stored state."""
    ruleset = await ruleset_cache(runtime).get(session, app_id)
    page = await players.list_players(session, app_id, PageParams(limit=limit, cursor=cursor))
    if not page.items:
        return Chunk(0, {}, None)
    now = runtime.clock.now()
    states = {p.player_id: PlayerState(p.player_id, zone(p.timezone)) for p in page.items}
    # Backfill writes derived state outside a worker batch: it becomes the writer of these players'
    # partitions first, or a batch committing between its reads (streaks, then progress) would
    # leave it writing progress from a streak that is already gone.
    partitions = runtime.settings.pipeline_partitions
    await lock_partitions(session, (partition_of(app_id, pid, partitions) for pid in states))
    records = [LogEvent(seq=0, app_id=app_id, event_id=f"{BACKFILL_EVENT}:{pid}", player_id=pid, type=BACKFILL_EVENT,
                        data={}, occurred_at=now, received_at=now, source="internal", pending=LIVE)
               for pid in states]
    batch = Batch(session, runtime.clock, ruleset, records, states)
    steps, mine = _steps(runtime)
    for step in steps:
        await step.load(batch)
    for record in records:
        state = states[record.player_id]
        mine.evaluate(batch, EventView.of(record, state.timezone), state, only=keys, source="backfill")
    unlocked = await mine.write(batch)
    await batch.write_effects()
    return Chunk(len(page.items), unlocked, page.next_cursor)


async def record_backfill(session: AsyncSession, app_id: str, key: str, version: int, chunk: Chunk,
                          now: datetime, *, fresh: bool) -> None:
    """Remember how far the backfill of ``key`` at ``version`` got (done when there is no next page)."""
    before = None if fresh else await repo.get_backfill(session, app_id, key)
    await repo.save_backfill(session, {
        "app_id": app_id, "achievement": key, "version": version, "cursor": chunk.next_cursor,
        "players": (before.players if before else 0) + chunk.players,
        "unlocked": (before.unlocked if before else 0) + chunk.unlocked.get(key, 0),
        "started_at": before.started_at if before else now,
        "done_at": now if chunk.next_cursor is None else None,
    })


async def backfill_stale(session: AsyncSession, runtime: Runtime, now: datetime,
                         budget: int = BACKFILL_PLAYERS_PER_RUN) -> dict[str, int]:
    """The job: continue backfilling achievements whose current version is not done, within a budget.

    Achievements of an app at the same point (all new ones, typically, after a bundle) share one
    pass over the players. Returns unlocks per ``app:achievement`` worked on.
    """
    by_app: dict[str, list[tuple[str, int, int | None]]] = {}
    for app_id, key, version, done_version in await repo.stale_backfills(session, 500):
        by_app.setdefault(app_id, []).append((key, version, done_version))
    worked: dict[str, int] = {}
    for app_id, items in by_app.items():
        defined = (await ruleset_cache(runtime).get(session, app_id)).of("achievement")
        # cursor -> {key: (version, fresh)}: keys resuming from the same page go together.
        groups: dict[str | None, dict[str, tuple[int, bool]]] = {}
        for key, version, done_version in items:
            spec = defined.get(key)
            if isinstance(spec, AchievementDef) and spec.grant_only:
                # Grant-only: nothing to evaluate; done without a pass over the players.
                await record_backfill(session, app_id, key, version, Chunk(0, {}, None), now, fresh=True)
                continue
            state = await repo.get_backfill(session, app_id, key)
            resume = state is not None and done_version == version and state.done_at is None
            cursor = state.cursor if state is not None and resume else None
            groups.setdefault(cursor, {})[key] = (version, not resume)
        for cursor, keys in groups.items():
            page_cursor = cursor
            while budget > 0:
                chunk = await backfill_page(session, runtime, app_id, set(keys), page_cursor,
                                            min(BACKFILL_PAGE, budget))
                for key, (version, fresh) in keys.items():
                    await record_backfill(session, app_id, key, version, chunk, now, fresh=fresh)
                    keys[key] = (version, False)
                    worked[f"{app_id}:{key}"] = worked.get(f"{app_id}:{key}", 0) + chunk.unlocked.get(key, 0)
                budget -= max(chunk.players, 1)
                page_cursor = chunk.next_cursor
                if page_cursor is None:
                    break
            if budget <= 0:
                return worked
    return worked


async def run_backfill(runtime: Runtime, app_id: str, keys: list[str] | None,
                       on_progress: Callable[[int, int], Any] | None = None,
                       on_start: Callable[[int], Any] | None = None) -> tuple[int, int]:
    """Backfill a whole app (every achievement, or ``keys``), one committed page at a time.

    Returns (players evaluated, achievements unlocked); ``on_start(total players)`` first, then
    ``on_progress(players, unlocked)`` per page.
    """
    sessions: async_sessionmaker[AsyncSession] = runtime.sessions
    async with unit_of_work(sessions) as session:
        versions = await _versions(session, runtime, app_id, keys)
        if on_start is not None:
            on_start(await repo.count_players(session, app_id))
    cursor: str | None = None
    players_seen = 0
    unlocked: dict[str, int] = {}
    while True:
        async with unit_of_work(sessions) as session:
            chunk = await backfill_page(session, runtime, app_id, set(versions), cursor)
        players_seen += chunk.players
        for key, n in chunk.unlocked.items():
            unlocked[key] = unlocked.get(key, 0) + n
        if on_progress is not None:
            on_progress(chunk.players, chunk.total)
        cursor = chunk.next_cursor
        if cursor is None:
            break
    async with unit_of_work(sessions) as session:
        now = runtime.clock.now()
        for key, version in versions.items():
            await record_backfill(session, app_id, key, version, Chunk(players_seen, unlocked, None), now, fresh=True)
    return players_seen, sum(unlocked.values())


async def _versions(session: AsyncSession, runtime: Runtime, app_id: str, keys: list[str] | None) -> dict[str, int]:
    """The current definition version of each achievement to backfill (404 for an unknown key)."""
    registry = registry_of(runtime)
    if keys is None:
        ruleset = await ruleset_cache(runtime).get(session, app_id)
        keys = sorted(ruleset.of("achievement"))
    versions = {}
    for key in keys:
        try:
            row = await rules.get_definition(session, registry, app_id, "achievement", key)
        except NotFound as exc:
            raise NotFound(f"achievement {key!r} not found", code="achievement_not_found") from exc
        versions[key] = row.version
    return versions


def _job(runtime: Runtime) -> Callable[[AsyncSession, datetime], Any]:
    async def body(session: AsyncSession, now: datetime) -> dict[str, int]:
        return await backfill_stale(session, runtime, now)

    return body


def register_jobs(scheduler: Scheduler, runtime: Runtime) -> None:
    scheduler.add(Job("achievements.backfill", every(60), _job(runtime)))
