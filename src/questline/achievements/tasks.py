"""The achievements processor, and backfill: awarding achievements to players who already qualify.

After every event the processor tests each achievement the player has not unlocked against
the player's state as the earlier processors left it (stats, levels, streak and other
metrics) and the event itself. It publishes ``achievements.unlocked`` (how many the player
holds) and ``achievement.<key>`` = 1 per unlocked achievement as metrics. An unlock is
claimed in ``player_achievements`` with a conditional upsert (only a row not yet unlocked
is updated), so it happens once whoever claims it; its points go through the ledger under
``achievement:{key}:{player}``, so a replay never pays twice. Grant-only achievements (no
criteria) are never evaluated here: they are only granted (``service.grant``), and a granted
row (``unlocked_by = 'grant'``) survives a replay's reset, since grants are not in the event log.

Backfill evaluates the same criteria against stored state: it runs every processor's
``load`` for a page of players (as if each had sent an empty ``questline.achievements.backfill``
event now) and lets this processor evaluate and write. Criteria on event fields cannot hold
then, by design; grant-only achievements are skipped. It runs from the CLI (``questline
achievements backfill``) and from the ``achievements.backfill`` job, which every minute picks
up achievement definitions whose version has not been backfilled yet (new or edited ones) and
works through their players a page at a time, remembering where it stopped.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from questline.achievements import repository as repo
from questline.achievements import service
from questline.achievements.schemas import AchievementDef, ProgressSpec
from questline.events import repository as event_log
from questline.events.models import LIVE, EventRecord
from questline.kit.db import unit_of_work
from questline.kit.errors import NotFound
from questline.kit.jobs import Job, Scheduler, every
from questline.kit.pagination import PageParams
from questline.kit.periods import zone
from questline.kit.runtime import Runtime
from questline.players import service as players
from questline.rules import service as rules
from questline.rules.conditions import Compiled, EvalContext, compile_condition
from questline.rules.pipeline import Batch, EventView, PlayerState, Processor
from questline.rules.service import RuleSet, registry_of, ruleset_cache

BACKFILL_EVENT = "questline.achievements.backfill"
BACKFILL_PAGE = 200
BACKFILL_PLAYERS_PER_RUN = 2000
Source = Literal["event", "backfill"]
# Metrics for later processors and conditions: how many the player holds, and achievement.<key> = 1 per unlock.
UNLOCKED_METRIC = "achievements.unlocked"


@dataclass(frozen=True)
class CompiledAchievement:
    key: str
    spec: AchievementDef
    criteria: Compiled
    progress: ProgressSpec | None


def compile_achievements(ruleset: RuleSet) -> list[CompiledAchievement]:
    """Achievements the pipeline evaluates: every one with criteria (grant-only ones are only granted)."""
    out = []
    for key, spec in sorted(ruleset.of("achievement").items()):
        assert isinstance(spec, AchievementDef)
        if spec.grant_only:
            continue
        out.append(CompiledAchievement(key, spec, compile_condition(spec.criteria), spec.progress_spec()))
    return out


@dataclass
class PlayerProgress:
    unlocked: set[str] = field(default_factory=set)
    progress: dict[str, tuple[int, int, str]] = field(default_factory=dict)  # key -> (current, target, period)
    dirty: set[str] = field(default_factory=set)
    unlocks: list[tuple[str, EventRecord, Source]] = field(default_factory=list)


def progress_of(spec: ProgressSpec, ctx: EvalContext, periods: dict[str, str]) -> tuple[int, str]:
    """(current value capped at the target, the stat period it counts in)."""
    if spec.stat is not None:
        value: float = ctx.stats.get((spec.stat, spec.period), 0)
        period = periods.get(spec.period, "all")
    elif spec.metric is not None:
        value, period = ctx.metrics.get(spec.metric, 0), "all"
    else:
        assert spec.level is not None
        value, period = ctx.levels.get(spec.level, 1), "all"
    return max(0, min(int(value), spec.target)), period


class AchievementsProcessor:
    name = "achievements"

    async def load(self, batch: Batch) -> None:
        if not batch.ruleset.of("achievement") or not batch.players:
            return
        for row in await repo.rows_of(batch.session, batch.app_id, batch.players):
            state = batch.players[row.player_id]
            mine = self._of(state)
            if row.unlocked_at is not None:
                mine.unlocked.add(row.achievement)
                state.metrics[f"achievement.{row.achievement}"] = 1
            mine.progress[row.achievement] = (row.progress_current, row.progress_target, row.progress_period)
        for state in batch.players.values():
            state.metrics[UNLOCKED_METRIC] = len(self._of(state).unlocked)

    @staticmethod
    def _of(state: PlayerState) -> PlayerProgress:
        found = state.extra.get("achievements")
        if found is None:
            found = state.extra["achievements"] = PlayerProgress()
        assert isinstance(found, PlayerProgress)
        return found

    def handle(self, batch: Batch, view: EventView, state: PlayerState) -> None:
        self.evaluate(batch, view, state)

    def evaluate(self, batch: Batch, view: EventView, state: PlayerState, only: set[str] | None = None,
                 source: Source = "event") -> None:
        compiled = batch.ruleset.memo("achievements", compile_achievements)
        if not compiled:
            return
        mine = self._of(state)
        ctx = batch.context(view, state)
        # Again after any unlock, so criteria on achievement metrics see this event's unlocks.
        unlocked_any = True
        while unlocked_any:
            unlocked_any = False
            for item in compiled:
                if item.key in mine.unlocked or (only is not None and item.key not in only):
                    continue
                met = item.criteria(ctx)
                if item.progress is not None:
                    current, period = progress_of(item.progress, ctx, view.periods)
                    entry = (item.progress.target if met else current, item.progress.target, period)
                    if mine.progress.get(item.key) != entry and (entry[0] > 0 or item.key in mine.progress):
                        mine.progress[item.key] = entry
                        mine.dirty.add(item.key)
                if met:
                    mine.unlocked.add(item.key)
                    mine.unlocks.append((item.key, view.record, source))
                    state.metrics[f"achievement.{item.key}"] = 1
                    state.metrics[UNLOCKED_METRIC] = len(mine.unlocked)
                    unlocked_any = True

    async def flush(self, batch: Batch) -> None:
        await self.write(batch)

    async def write(self, batch: Batch) -> dict[str, int]:
        """Write progress and claim unlocks; returns how many players this call unlocked each achievement for."""
        specs = {c.key: c for c in batch.ruleset.memo("achievements", compile_achievements)}
        now = batch.clock.now()
        rows: list[dict[str, Any]] = []
        claimed: dict[str, int] = {}
        for state in batch.players.values():
            mine = state.extra.get("achievements")
            if not isinstance(mine, PlayerProgress):
                continue
            unlocking = {key for key, _, _ in mine.unlocks}
            for key in sorted(mine.dirty - unlocking):
                current, target, period = mine.progress[key]
                rows.append({"app_id": batch.app_id, "player_id": state.player_id, "achievement": key,
                             "progress_current": current, "progress_target": target, "progress_period": period,
                             "updated_at": now})
            mine.dirty.clear()
            unlocks, mine.unlocks = mine.unlocks, []
            for key, record, source in unlocks:
                item = specs.get(key)
                if item is not None and await self._unlock(batch, state, item, record, source, now):
                    claimed[key] = claimed.get(key, 0) + 1
        await repo.save_progress(batch.session, rows)
        return claimed

    async def _unlock(self, batch: Batch, state: PlayerState, item: CompiledAchievement, record: EventRecord,
                      source: Source, now: datetime) -> bool:
        target = item.progress.target if item.progress is not None else 1
        period = state.extra["achievements"].progress.get(item.key, (0, 0, "all"))[2]
        won = await repo.claim_unlock(batch.session, {
            "app_id": batch.app_id, "player_id": state.player_id, "achievement": item.key,
            "progress_current": target, "progress_target": target, "progress_period": period,
            "unlocked_at": record.occurred_at if source == "event" else now, "unlocked_by": source,
            "event_id": record.event_id if source == "event" else None, "updated_at": now,
        })
        if not won:
            return False  # unlocked already (by a backfill racing this batch, or the other way round)
        spec = item.spec
        batch.emit("achievement.unlocked", state.player_id, service.unlocked_payload(item.key, spec, source), record)
        credited = await service.pay_reward(batch.session, batch.clock, batch.app_id, state.player_id, item.key, spec)
        if credited is not None:
            batch.emit("points.credited", state.player_id, credited, record)
        return True

    async def reset(self, session: AsyncSession, app_id: str | None) -> None:
        await repo.reset(session, app_id)


# Backfill ---------------------------------------------------------------------------------------


def _steps(runtime: Runtime) -> tuple[list[Processor], AchievementsProcessor]:
    steps = runtime.extensions.get("processing.processors")
    if not isinstance(steps, list):  # pragma: no cover - a wiring bug
        raise RuntimeError("processors are not installed; call processing.install(runtime)")
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
    records = [EventRecord(app_id=app_id, event_id=f"{BACKFILL_EVENT}:{pid}", player_id=pid, type=BACKFILL_EVENT,
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
    await event_log.add_outbox(session, batch.outbox)
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
