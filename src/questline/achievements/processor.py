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

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from sqlalchemy.ext.asyncio import AsyncSession

from questline.achievements import repository as repo
from questline.achievements import service
from questline.achievements.schemas import AchievementDef, ProgressSpec
from questline.pipeline.batch import Batch, EventView, PlayerState
from questline.pipeline.models import LogEvent
from questline.rules.conditions import Compiled, EvalContext, compile_condition, leaf_reader, reads_of
from questline.rules.service import RuleSet

BACKFILL_EVENT = "questline.achievements.backfill"
Source = Literal["event", "backfill"]
# Metrics for later processors and conditions: how many the player holds, and achievement.<key> = 1 per unlock.
UNLOCKED_METRIC = "achievements.unlocked"


# (context, the event's periods) -> (current value capped at the target, the stat period it counts in)
ProgressReader = Callable[[EvalContext, Mapping[str, str]], tuple[int, str]]
# (context, the event's periods) -> (criteria met, current progress value, its stat period)
Judge = Callable[[EvalContext, Mapping[str, str]], tuple[bool, int, str]]


@dataclass(frozen=True)
class CompiledAchievement:
    key: str
    spec: AchievementDef
    criteria: Compiled
    progress: ProgressSpec | None
    read_progress: ProgressReader | None = None
    # Criteria and progress in one read, when the progress is derived from a single "at least N"
    # criterion (most achievements): the value is read once for both.
    judge: Judge | None = None


def compile_achievements(ruleset: RuleSet) -> list[CompiledAchievement]:
    """Achievements the pipeline evaluates: every one with criteria (grant-only ones are only granted)."""
    out = []
    for key, spec in sorted(ruleset.of("achievement").items()):
        assert isinstance(spec, AchievementDef)
        if spec.grant_only:
            continue
        progress = spec.progress_spec()
        out.append(CompiledAchievement(key, spec, compile_condition(spec.criteria), progress,
                                       None if progress is None else progress_reader(progress),
                                       None if progress is None or spec.progress is not None
                                       else judge_of(spec, progress)))
    return out


def judge_of(spec: AchievementDef, progress: ProgressSpec) -> Judge | None:
    """Criteria and derived progress read once (``progress_spec`` derives progress from the same
    single comparison the criteria are)."""
    leaf = leaf_reader(spec.criteria)
    if leaf is None:
        return None
    read, check = leaf
    target = progress.target
    period = progress.period if progress.stat is not None else None

    def judge(ctx: EvalContext, periods: Mapping[str, str]) -> tuple[bool, int, str]:
        value = read(ctx)
        return (check(value), max(0, min(int(value), target)),
                "all" if period is None else periods.get(period, "all"))
    return judge


@dataclass(frozen=True)
class Dependents:
    """Which achievements (positions in ``compile_achievements``' list) each input can move."""

    always: frozenset[int]  # read the event itself: evaluated on every event
    periodic: frozenset[int]  # read a stat of a day, week or month: move when the event's periods do
    stats: dict[str, frozenset[int]]
    levels: dict[str, frozenset[int]]
    metrics: dict[str, frozenset[int]]


def index_achievements(ruleset: RuleSet) -> Dependents:
    always: set[int] = set()
    periodic: set[int] = set()
    stats: dict[str, set[int]] = {}
    levels: dict[str, set[int]] = {}
    metrics: dict[str, set[int]] = {}
    for i, item in enumerate(ruleset.memo("achievements", compile_achievements)):
        reads = reads_of(item.spec.criteria)
        if item.progress is not None:  # progress reads one stat, metric or level too
            if item.progress.stat is not None:
                reads.stats.add((item.progress.stat, item.progress.period))
            if item.progress.metric is not None:
                reads.metrics.add(item.progress.metric)
            if item.progress.level is not None:
                reads.levels.add(item.progress.level)
        if reads.event:
            always.add(i)
        if any(period != "all" for _, period in reads.stats):
            periodic.add(i)
        for stat, _ in reads.stats:
            stats.setdefault(stat, set()).add(i)
        for level in reads.levels:
            levels.setdefault(level, set()).add(i)
        for metric in reads.metrics:
            metrics.setdefault(metric, set()).add(i)

    def frozen(by: dict[str, set[int]]) -> dict[str, frozenset[int]]:
        return {key: frozenset(found) for key, found in by.items()}
    return Dependents(frozenset(always), frozenset(periodic), frozen(stats), frozen(levels), frozen(metrics))


@dataclass
class PlayerProgress:
    unlocked: set[str] = field(default_factory=set)
    progress: dict[str, tuple[int, int, str]] = field(default_factory=dict)  # key -> (current, target, period)
    dirty: set[str] = field(default_factory=set)
    unlocks: list[tuple[str, LogEvent, Source]] = field(default_factory=list)
    # The periods of the event this player's achievements were last evaluated at in this batch
    # (None before the first: then every one is evaluated).
    periods: Mapping[str, str] | None = None


def progress_reader(spec: ProgressSpec) -> ProgressReader:
    """Reads (current value capped at the target, the stat period it counts in), compiled once per
    definition: the worker reads it for every achievement not yet unlocked on every event."""
    target = spec.target
    if spec.stat is not None:
        key, period = (spec.stat, spec.period), spec.period

        def stat(ctx: EvalContext, periods: Mapping[str, str]) -> tuple[int, str]:
            return max(0, min(int(ctx.stats.get(key, 0)), target)), periods.get(period, "all")
        return stat
    if spec.metric is not None:
        metric = spec.metric

        def of_metric(ctx: EvalContext, periods: Mapping[str, str]) -> tuple[int, str]:
            return max(0, min(int(ctx.metrics.get(metric, 0)), target)), "all"
        return of_metric
    assert spec.level is not None
    track = spec.level

    def level(ctx: EvalContext, periods: Mapping[str, str]) -> tuple[int, str]:
        return max(0, min(int(ctx.levels.get(track, 1)), target)), "all"
    return level


class AchievementsProcessor:
    name = "achievements"

    def concerned(self, ruleset: RuleSet) -> bool:
        return bool(ruleset.of("achievement"))

    async def load(self, batch: Batch) -> None:
        if not batch.ruleset.of("achievement") or not batch.players:
            return
        players = batch.players
        for player_id, key, unlocked, current, target, period in await repo.cells_of(
                batch.session, batch.app_id, players):
            state = players[player_id]
            mine = self._of(state)
            if unlocked:
                mine.unlocked.add(key)
                state.metrics[f"achievement.{key}"] = 1
            mine.progress[key] = (current, target, period)
        for state in players.values():
            state.metrics[UNLOCKED_METRIC] = len(self._of(state).unlocked)

    @staticmethod
    def _of(state: PlayerState) -> PlayerProgress:
        return state.part(PlayerProgress)

    def handle(self, batch: Batch, view: EventView, state: PlayerState) -> None:
        self.evaluate(batch, view, state)

    def evaluate(self, batch: Batch, view: EventView, state: PlayerState, only: set[str] | None = None,
                 source: Source = "event") -> None:
        """Test the player's achievements not yet unlocked after this event.

        A player's first event of the batch tests every one: state can have moved outside the
        worker since (a person-made completion, a grant, a referral, an edited definition). A
        later event tests only those whose inputs moved since the previous one (the stats,
        levels and metrics they read, the event's periods), and those that read the event
        itself: the others would give the same answer as last time, as criteria and progress
        are functions of their inputs."""
        compiled = batch.ruleset.memo("achievements", compile_achievements)
        if not compiled:
            return
        mine = self._of(state)
        unlocked, progress, periods = mine.unlocked, mine.progress, view.periods
        ctx = batch.context(view, state)
        deps = batch.ruleset.memo("achievements.dependents", index_achievements)
        need: set[int] | None = None  # None: every one
        if only is None:  # (a backfill's evaluation of some keys neither uses nor resets what moved)
            if mine.periods is not None:
                need = self._moved(deps, state, mine.periods != periods)
            mine.periods = periods
            state.changed_stats.clear()
            state.levels.changed.clear()
            state.metrics.changed.clear()
        # Again after any unlock, so criteria on achievement metrics see this event's unlocks.
        unlocked_any = True
        while unlocked_any:
            unlocked_any = False
            for i, item in enumerate(compiled):
                if item.key in unlocked or (only is not None and item.key not in only):
                    continue
                if need is not None and i not in need:
                    continue
                judge = item.judge
                if judge is not None:
                    met, current, period = judge(ctx, periods)
                else:
                    met = item.criteria(ctx)
                    if item.read_progress is not None:
                        current, period = item.read_progress(ctx, periods)
                if item.read_progress is not None:
                    target = item.progress.target if item.progress is not None else current
                    entry = (target if met else current, target, period)
                    before = progress.get(item.key)
                    if before != entry and (entry[0] > 0 or before is not None):
                        progress[item.key] = entry
                        mine.dirty.add(item.key)
                if met:
                    unlocked.add(item.key)
                    mine.unlocks.append((item.key, view.record, source))
                    state.metrics[f"achievement.{item.key}"] = 1
                    state.metrics[UNLOCKED_METRIC] = len(mine.unlocked)
                    unlocked_any = True
                    if need is not None:  # what the unlock moves is tested later in this pass, as all are
                        need |= self._moved(deps, state, False)
            if unlocked_any and need is not None:
                # ... and in the next pass (those earlier in the order).
                need = self._moved(deps, state, False)
                state.metrics.changed.clear()
        if need is None and only is None:
            state.metrics.changed.clear()  # this event's unlocks were seen by every achievement

    @staticmethod
    def _moved(deps: Dependents, state: PlayerState, new_periods: bool) -> set[int]:
        need = set(deps.always)
        if new_periods:
            need |= deps.periodic
        for stat in state.changed_stats:
            need |= deps.stats.get(stat, frozenset())
        for level in state.levels.changed:
            need |= deps.levels.get(level, frozenset())
        for metric in state.metrics.changed:
            need |= deps.metrics.get(metric, frozenset())
        return need

    async def flush(self, batch: Batch) -> None:
        await self.write(batch)

    async def write(self, batch: Batch) -> dict[str, int]:
        """Write progress and claim unlocks; returns how many players this call unlocked each achievement for."""
        specs = {c.key: c for c in batch.ruleset.memo("achievements", compile_achievements)}
        now = batch.clock.now()
        rows: list[dict[str, Any]] = []
        unlocking: list[tuple[PlayerState, CompiledAchievement, LogEvent, Source, dict[str, Any]]] = []
        for state in batch.players.values():
            mine = state.part_if_any(PlayerProgress)
            if mine is None:
                continue
            unlocked_now = {key for key, _, _ in mine.unlocks}
            for key in sorted(mine.dirty - unlocked_now):
                current, target, period = mine.progress[key]
                rows.append({"app_id": batch.app_id, "player_id": state.player_id, "achievement": key,
                             "progress_current": current, "progress_target": target, "progress_period": period,
                             "updated_at": now})
            mine.dirty.clear()
            unlocks, mine.unlocks = mine.unlocks, []
            for key, record, source in unlocks:
                item = specs.get(key)
                if item is not None:
                    unlocking.append((state, item, record, source, self._unlock_row(batch, state, item, record,
                                                                                    source, now)))
        await repo.save_progress(batch.session, rows)
        # One statement for every unlock of the batch; only the writer that unlocked announces and pays
        # (an unlock a backfill made meanwhile, or the other way round, is not made twice).
        won = await repo.claim_unlocks(batch.session, [row for *_, row in unlocking])
        claimed: dict[str, int] = {}
        for state, item, record, source, _ in unlocking:
            if (state.player_id, item.key) not in won:
                continue
            claimed[item.key] = claimed.get(item.key, 0) + 1
            batch.emit("achievement.unlocked", state.player_id, service.unlocked_payload(item.key, item.spec, source),
                       record)
            credit = service.reward_credit(state.player_id, item.key, item.spec)
            if credit is not None:
                batch.credit(credit, record)
        return claimed

    @staticmethod
    def _unlock_row(batch: Batch, state: PlayerState, item: CompiledAchievement, record: LogEvent, source: Source,
                    now: datetime) -> dict[str, Any]:
        target = item.progress.target if item.progress is not None else 1
        period = state.part(PlayerProgress).progress.get(item.key, (0, 0, "all"))[2]
        return {"app_id": batch.app_id, "player_id": state.player_id, "achievement": item.key,
                "progress_current": target, "progress_target": target, "progress_period": period,
                "unlocked_at": record.occurred_at if source == "event" else now, "unlocked_by": source,
                "event_id": record.event_id if source == "event" else None, "updated_at": now}

    async def reset(self, session: AsyncSession, app_id: str | None) -> None:
        await repo.reset(session, app_id)
