"""The streaks processor and the job that breaks streaks at the player's local midnight.

Per player per streak the worker keeps ``current`` and ``longest``, the period of the last
activity, and ``covered_period``: the last period the streak is kept through (by activity,
a freeze or a rest day). Activity in ``covered + 1`` extends the streak; activity in the same
period changes nothing; a later period first has to account for the missed ones: scheduled
rest days excuse theirs, freezes cover the rest one each (used up automatically), and if
there are not enough the old streak breaks and a new one starts at 1.

Breaking without new activity is the job's: every minute it finds live streaks whose
``check_at`` (the local midnight that ends ``covered + 1``) has passed and appends an
internal ``questline.streak.check`` event for each, with an id made of the streak, player and
``check_at``, so running twice appends once. The worker handles the check like any event:
in log order, as the only writer of streak state, and again identically on replay.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from questline.ledger import service as ledger
from questline.pipeline.batch import Batch, EventView, PlayerState
from questline.pipeline.models import LogEvent
from questline.rules.conditions import Compiled, compile_condition
from questline.rules.service import RuleSet
from questline.streaks import repository as repo
from questline.streaks.periods import days_between, fits, index_of, key_at, period_of, starts_at
from questline.streaks.schemas import FreezeGrant, Milestone, StreakDef

CHECK_EVENT = "questline.streak.check"
_log = structlog.get_logger("questline.streaks")


@dataclass
class StreakCell:
    current: int = 0
    longest: int = 0
    started: str | None = None
    last: str | None = None
    covered: str | None = None
    bought: int = 0
    granted: int = 0
    used: int = 0
    check_at: datetime | None = None
    covered_until: datetime | None = None  # the UTC end of ``covered`` in the time zone it was counted in
    dirty: bool = False

    @property
    def available(self) -> int:
        return max(0, self.bought + self.granted - self.used)


@dataclass
class PlayerStreaks:
    cells: dict[str, StreakCell] = field(default_factory=dict)
    rest_days: dict[str, set[str]] = field(default_factory=dict)  # streak -> local dates
    rewards: list[tuple[str, Milestone, str, LogEvent]] = field(default_factory=list)  # streak, mark, start


@dataclass
class CompiledStreaks:
    specs: dict[str, StreakDef]
    by_type: dict[str, list[tuple[str, StreakDef, Compiled]]]
    grants_by_type: dict[str, list[tuple[str, StreakDef, FreezeGrant, Compiled]]]


def compile_streaks(ruleset: RuleSet) -> CompiledStreaks:
    specs: dict[str, StreakDef] = {}
    by_type: dict[str, list[tuple[str, StreakDef, Compiled]]] = {}
    grants: dict[str, list[tuple[str, StreakDef, FreezeGrant, Compiled]]] = {}
    for key, spec in ruleset.of("streak").items():
        assert isinstance(spec, StreakDef)
        specs[key] = spec
        matches = compile_condition(spec.filter)
        for event_type in spec.event_types:
            by_type.setdefault(event_type, []).append((key, spec, matches))
        for grant in spec.freeze_grants:
            grants.setdefault(grant.event_type, []).append((key, spec, grant, compile_condition(grant.filter)))
    return CompiledStreaks(specs, by_type, grants)


def publish_metrics(state: PlayerState, key: str, cell: StreakCell) -> None:
    state.metrics[f"streak.{key}.current"] = cell.current
    state.metrics[f"streak.{key}.longest"] = cell.longest


class StreaksProcessor:
    name = "streaks"
    defers_writes = True  # its flush only writes rows nothing in the batch reads after (see Processor)

    def concerned(self, ruleset: RuleSet) -> bool:
        return bool(ruleset.memo("streaks", compile_streaks).specs)

    async def load(self, batch: Batch) -> None:
        compiled = batch.ruleset.memo("streaks", compile_streaks)
        if not compiled.specs or not batch.players:
            return
        for row in await repo.cells_of(batch.session, batch.app_id, batch.players):
            spec = compiled.specs.get(row.streak)
            if spec is None:
                continue
            state = batch.players[row.player_id]
            cell = StreakCell(row.current, row.longest, row.started_period, row.last_period, row.covered_period,
                              row.freezes_bought, row.freezes_granted, row.freezes_used, row.check_at,
                              row.covered_until)
            if not all(fits(p, spec.cadence) for p in (cell.started, cell.last, cell.covered) if p is not None):
                # The cadence was edited: periods of the other kind cannot continue this streak.
                cell.current, cell.started, cell.last, cell.covered, cell.check_at = 0, None, None, None, None
                cell.dirty = True
            self._of(state).cells[row.streak] = cell
            publish_metrics(state, row.streak, cell)
        if any(spec.rest_days_per_week for spec in compiled.specs.values()):
            for day in await repo.rest_days_of(batch.session, batch.app_id, batch.players):
                self._of(batch.players[day.player_id]).rest_days.setdefault(day.streak, set()).add(day.day)

    @staticmethod
    def _of(state: PlayerState) -> PlayerStreaks:
        return state.part(PlayerStreaks)

    def handle(self, batch: Batch, view: EventView, state: PlayerState) -> None:
        compiled = batch.ruleset.memo("streaks", compile_streaks)
        if not compiled.specs:
            return
        record = view.record
        if record.type == CHECK_EVENT:
            key = str(record.data.get("streak", ""))
            if key in compiled.specs:
                self._check(batch, view, state, key, compiled.specs[key])
            return
        counted = compiled.by_type.get(record.type)
        granting = compiled.grants_by_type.get(record.type)
        if not counted and not granting:
            return
        ctx = batch.context(view, state)
        for key, spec, matches in counted or ():
            if matches(ctx):
                self._activity(batch, view, state, key, spec)
        for key, spec, grant, matches in granting or ():
            if matches(ctx):
                self._grant(batch, view, state, key, spec, grant)

    # Activity, checks and grants ----------------------------------------------------------

    def _activity(self, batch: Batch, view: EventView, state: PlayerState, key: str, spec: StreakDef) -> None:
        mine = self._of(state)
        cell = mine.cells.setdefault(key, StreakCell())
        period = period_of(view.periods, spec.cadence)
        now = index_of(period, spec.cadence)
        record = view.record
        kept: dict[str, int] = {}
        if cell.covered_until is not None and record.occurred_at < cell.covered_until:
            return  # this instant already lies in a counted period (in whatever time zone it was counted)
        self._skip_covered(cell, spec, state.timezone)
        if cell.current > 0 and cell.covered is not None:
            covered = index_of(cell.covered, spec.cadence)
            if now <= covered:
                return  # this period already counts (or is older than the streak's end)
            if now > covered + 1:
                excused, needed = self._missed(mine, key, spec, covered + 1, now - 1)
                if needed > cell.available:
                    self._break(batch, state, key, cell, record, reason="missed")
                    self._start(cell, period)
                else:
                    cell.used += needed
                    kept = {"freezes_used": needed, "rest_days": excused}
                    self._extend(cell, period)
            else:
                self._extend(cell, period)
        else:
            if cell.last is not None and now <= index_of(cell.last, spec.cadence):
                return  # a late event from before the streak broke does not restart it
            self._start(cell, period)
        cell.covered_until = starts_at(now + 1, spec.cadence, state.timezone)
        cell.longest = max(cell.longest, cell.current)
        cell.check_at = starts_at(index_of(period, spec.cadence) + 2, spec.cadence, state.timezone)
        cell.dirty = True
        publish_metrics(state, key, cell)
        batch.emit("streak.updated", state.player_id,
                   {"streak": key, "current": cell.current, "longest": cell.longest, "period": period,
                    "freezes_available": cell.available, **kept}, record)
        for mark in spec.milestones:
            if mark.at == cell.current:
                assert cell.started is not None
                batch.emit("streak.milestone", state.player_id,
                           {"streak": key, "milestone": mark.at, "started_period": cell.started}, record)
                if mark.reward is not None:
                    mine.rewards.append((key, mark, cell.started, record))

    @staticmethod
    def _skip_covered(cell: StreakCell, spec: StreakDef, tz: ZoneInfo) -> None:
        """Periods (in today's time zone) that end before the counted span does were lived through
        already: they neither count nor are missed (a player who moved east)."""
        while cell.covered is not None and cell.covered_until is not None:
            following = index_of(cell.covered, spec.cadence) + 1
            if starts_at(following + 1, spec.cadence, tz) > cell.covered_until:
                return
            cell.covered, cell.dirty = key_at(following, spec.cadence), True

    @staticmethod
    def _start(cell: StreakCell, period: str) -> None:
        cell.current, cell.started, cell.last, cell.covered = 1, period, period, period

    @staticmethod
    def _extend(cell: StreakCell, period: str) -> None:
        cell.current += 1
        cell.last = cell.covered = period

    @staticmethod
    def _missed(mine: PlayerStreaks, key: str, spec: StreakDef, first: int, last: int) -> tuple[int, int]:
        """(rest days that excuse missed periods first..last, freezes still needed)."""
        count = last - first + 1
        if spec.cadence != "daily" or not spec.rest_days_per_week:
            return 0, count
        rest = mine.rest_days.get(key, set())
        excused = sum(1 for day in days_between(first, last) if day in rest)
        return excused, count - excused

    def _check(self, batch: Batch, view: EventView, state: PlayerState, key: str, spec: StreakDef) -> None:
        """A period ended: keep the streak with rest days and freezes, or break it."""
        mine = self._of(state)
        cell = mine.cells.get(key)
        if cell is None or cell.current == 0 or cell.covered is None:
            return
        self._skip_covered(cell, spec, state.timezone)
        today = index_of(period_of(view.periods, spec.cadence), spec.cadence)
        covered = index_of(cell.covered, spec.cadence)
        if today <= covered + 1:
            # Nothing missed yet: activity came first, or the player's time zone moved west.
            check_at = starts_at(covered + 2, spec.cadence, state.timezone)
            if check_at != cell.check_at:
                cell.check_at, cell.dirty = check_at, True
            return
        excused, needed = self._missed(mine, key, spec, covered + 1, today - 1)
        if needed > cell.available:
            self._break(batch, state, key, cell, view.record, reason="missed")
            cell.current, cell.started, cell.check_at = 0, None, None
        else:
            cell.used += needed
            cell.covered = key_at(today - 1, spec.cadence)
            cell.covered_until = starts_at(today, spec.cadence, state.timezone)
            cell.check_at = starts_at(today + 1, spec.cadence, state.timezone)
            batch.emit("streak.updated", state.player_id,
                       {"streak": key, "current": cell.current, "longest": cell.longest, "period": cell.covered,
                        "freezes_available": cell.available, "freezes_used": needed, "rest_days": excused},
                       view.record)
        cell.dirty = True
        publish_metrics(state, key, cell)

    @staticmethod
    def _break(batch: Batch, state: PlayerState, key: str, cell: StreakCell, record: LogEvent,
               reason: str) -> None:
        batch.emit("streak.broken", state.player_id,
                   {"streak": key, "length": cell.current, "started_period": cell.started,
                    "last_active_period": cell.last, "reason": reason}, record)

    def _grant(self, batch: Batch, view: EventView, state: PlayerState, key: str, spec: StreakDef,
               grant: FreezeGrant) -> None:
        cell = self._of(state).cells.setdefault(key, StreakCell())
        added = min(grant.count, spec.freezes.max_held - cell.available)
        if added <= 0:
            return
        cell.granted += added
        cell.dirty = True
        batch.emit("streak.freeze_granted", state.player_id,
                   {"streak": key, "count": added, "freezes_available": cell.available}, view.record)

    # Writing back -------------------------------------------------------------------------

    async def flush(self, batch: Batch) -> None:
        now = batch.clock.now()
        rows = []
        for state in batch.players.values():
            mine = state.part_if_any(PlayerStreaks)
            if mine is None:
                continue
            for key, cell in mine.cells.items():
                if cell.dirty:
                    rows.append({"app_id": batch.app_id, "player_id": state.player_id, "streak": key,
                                 "current": cell.current, "longest": cell.longest, "started_period": cell.started,
                                 "last_period": cell.last, "covered_period": cell.covered,
                                 "freezes_granted": cell.granted, "freezes_used": cell.used,
                                 "check_at": cell.check_at, "covered_until": cell.covered_until,
                                 "updated_at": now})
                    cell.dirty = False
            rewards, mine.rewards = mine.rewards, []
            for key, mark, started, record in rewards:
                self._reward(batch, state.player_id, key, mark, started, record)
        await repo.save_states(batch.session, rows)

    @staticmethod
    def _reward(batch: Batch, player_id: str, key: str, mark: Milestone, started: str, record: LogEvent) -> None:
        reward = mark.reward
        assert reward is not None
        # Keyed by the streak's first period: a later streak earns it again, a replay never re-pays
        # (nor does a key paid before under a reward since edited: paid is paid).
        batch.credit(ledger.Credit(
            player_id, reward.currency, reward.amount,
            idempotency_key=f"streak-milestone:{key}:{player_id}:{mark.at}:{started}", source="streak_milestone",
            reference={"streak": key, "milestone": mark.at, "started_period": started},
            description=f"{key} streak of {mark.at}"), record)

    async def reset(self, session: AsyncSession, app_id: str | None) -> None:
        await repo.reset(session, app_id)
