"""The progression processor: XP from rules and awards, levels, and level-up rewards."""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from questline.kit.periods import overlaps, period_span
from questline.ledger import service as ledger
from questline.pipeline.batch import Batch, EventView, PlayerState
from questline.pipeline.models import LogEvent
from questline.progression import repository as repo
from questline.progression.schemas import CombinedLevelDef, TrackDef, XpRuleDef
from questline.rules.conditions import Compiled, compile_condition
from questline.rules.service import RuleSet

AWARD_EVENT = "questline.xp.award"


@dataclass
class TrackState:
    total: int = 0
    level: int = 1
    xp_today: int = 0
    today: str = ""
    dirty: bool = False


class Tracks(dict[str, TrackState]):
    """A player's XP tracks by key."""


@dataclass
class Compiled_:
    tracks: dict[str, tuple[TrackDef, list[int]]]
    rules_by_type: dict[str, list[tuple[str, XpRuleDef, Compiled]]]
    combined: dict[str, CombinedLevelDef]


def compile_progression(ruleset: RuleSet) -> Compiled_:
    tracks = {}
    for key, spec in ruleset.of("xp_track").items():
        assert isinstance(spec, TrackDef)
        tracks[key] = (spec, spec.curve.starts(spec.effective_max()))
    rules: dict[str, list[tuple[str, XpRuleDef, Compiled]]] = {}
    for key, rule in ruleset.of("xp_rule").items():
        assert isinstance(rule, XpRuleDef)
        rules.setdefault(rule.event_type, []).append((key, rule, compile_condition(rule.filter)))
    combined = {k: v for k, v in ruleset.of("combined_level").items() if isinstance(v, CombinedLevelDef)}
    return Compiled_(tracks, rules, combined)


@dataclass
class Pending:
    daily: dict[tuple[str, str], int] = field(default_factory=dict)  # (rule, day) -> earned
    # (rule, day) -> the UTC span of that local day in the time zone it was first counted in
    spans: dict[tuple[str, str], tuple[datetime, datetime]] = field(default_factory=dict)
    daily_dirty: set[tuple[str, str]] = field(default_factory=set)
    activities: list[dict[str, Any]] = field(default_factory=list)
    rewards: list[tuple[str, int, TrackDef, LogEvent]] = field(default_factory=list)  # track, level, def, event


def _neighbours(day: str) -> tuple[str, ...]:
    middle = date.fromisoformat(day)
    return tuple((middle + timedelta(days=shift)).isoformat() for shift in (-1, 0, 1))


class ProgressionProcessor:
    name = "progression"
    defers_writes = True  # its flush only writes rows nothing in the batch reads after (see Processor)

    def concerned(self, ruleset: RuleSet) -> bool:
        compiled = ruleset.memo("progression", compile_progression)
        return bool(compiled.tracks or compiled.rules_by_type)

    async def load(self, batch: Batch) -> None:
        compiled = batch.ruleset.memo("progression", compile_progression)
        if not compiled.tracks:
            return
        for row in await repo.tracks_of(batch.session, batch.app_id, batch.players):
            state = batch.players[row.player_id]
            state.part(Tracks)[row.track] = TrackState(row.total_xp, row.level, row.xp_today,
                                                                          row.today)
            state.levels[row.track] = row.level
        capped = [key for rules in compiled.rules_by_type.values() for key, rule, _ in rules if rule.daily_cap]
        if capped:
            # Local days of other time zones that can overlap an event's day: the day itself and
            # its neighbours (zones are at most 26 hours apart).
            days = {near for day in {view.periods["day"] for view in batch.views} for near in _neighbours(day)}
            for d in await repo.daily_of(batch.session, batch.app_id, batch.players, capped, days):
                pending = self._pending(batch.players[d.player_id])
                pending.daily[(d.rule, d.day)] = d.earned
                if d.starts_at is not None and d.ends_at is not None:
                    pending.spans[(d.rule, d.day)] = (d.starts_at, d.ends_at)
        for state in batch.players.values():
            self._refresh_combined(compiled, state)

    @staticmethod
    def _pending(state: PlayerState) -> Pending:
        return state.part(Pending)

    def handle(self, batch: Batch, view: EventView, state: PlayerState) -> None:
        compiled = batch.ruleset.memo("progression", compile_progression)
        record = view.record
        if record.type == AWARD_EVENT:
            track = str(record.data.get("track", ""))
            amount = record.data.get("amount")
            if track in compiled.tracks and isinstance(amount, int) and amount > 0:
                self._grant(batch, compiled, view, state, track, amount, "award")
            return
        rules = compiled.rules_by_type.get(record.type)
        if not rules:
            return
        ctx = batch.context(view, state)
        pending = self._pending(state)
        for key, rule, matches in rules:
            if rule.track not in compiled.tracks or not matches(ctx):
                continue
            amount = rule.amount
            if rule.daily_cap is not None:
                slot = (key, view.periods["day"])
                span = pending.spans.setdefault(slot, period_span("day", slot[1], state.timezone))
                # XP a day of another time zone already counted, where it overlaps this one, uses
                # this day's cap too: moving time zones never opens a fresh cap for the same hours.
                used = pending.daily.get(slot, 0) + sum(
                    earned for (rule_key, day), earned in pending.daily.items()
                    if rule_key == key and day != slot[1] and (rule_key, day) in pending.spans
                    and overlaps(span, pending.spans[(rule_key, day)]))
                amount = min(amount, rule.daily_cap - used)
                if amount <= 0:
                    continue
                pending.daily[slot] = pending.daily.get(slot, 0) + amount
                pending.daily_dirty.add(slot)
            self._grant(batch, compiled, view, state, rule.track, amount, key)

    def _grant(self, batch: Batch, compiled: Compiled_, view: EventView, state: PlayerState, track: str,
               amount: int, source: str) -> None:
        spec, starts = compiled.tracks[track]
        tracks = state.part(Tracks)
        current = tracks.setdefault(track, TrackState())
        record = view.record
        day = view.periods["day"]
        # xp_today follows the newest local day seen; an older day's late event does not reset it.
        if current.today < day:
            current.today, current.xp_today = day, 0
        if current.today == day:
            current.xp_today += amount
        current.total += amount
        current.dirty = True
        new_level = min(bisect_right(starts, current.total), spec.effective_max())
        pending = self._pending(state)
        pending.activities.append({"app_id": batch.app_id, "player_id": state.player_id, "track": track,
                                   "source": source, "amount": amount, "event_id": record.event_id,
                                   "occurred_at": record.occurred_at})
        batch.emit("xp.earned", state.player_id, {"track": track, "amount": amount, "total": current.total,
                                                  "source": source}, record)
        if new_level > current.level:
            gained = list(range(current.level + 1, new_level + 1))
            batch.emit("level.up", state.player_id, {"track": track, "from": current.level, "to": new_level,
                                                     "name": spec.level_names.get(new_level)}, record)
            if spec.level_up_reward is not None:
                pending.rewards.extend((track, level, spec, record) for level in gained)
            current.level = new_level
        state.levels[track] = current.level
        self._refresh_combined(compiled, state, batch, record)

    @staticmethod
    def _refresh_combined(compiled: Compiled_, state: PlayerState, batch: Batch | None = None,
                          record: LogEvent | None = None) -> None:
        if not compiled.combined:
            return
        tracks = state.part_if_any(Tracks) or Tracks()
        totals = {k: t.total for k, t in tracks.items()}
        for key, spec in compiled.combined.items():
            level = spec.level_for(totals)
            before = state.levels.get(key, 1)
            state.levels[key] = level
            if batch is not None and level > before:
                name = spec.levels[level - 1].name
                batch.emit("level.up", state.player_id, {"track": key, "from": before, "to": level, "name": name},
                           record)

    async def flush(self, batch: Batch) -> None:
        now = batch.clock.now()
        track_rows, daily_rows, activities = [], [], []
        for state in batch.players.values():
            for track, ts in (state.part_if_any(Tracks) or Tracks()).items():
                if ts.dirty:
                    track_rows.append({"app_id": batch.app_id, "player_id": state.player_id, "track": track,
                                       "total_xp": ts.total, "level": ts.level, "xp_today": ts.xp_today,
                                       "today": ts.today, "updated_at": now})
                    ts.dirty = False
            pending = state.take_part(Pending)
            if pending is None:
                continue
            daily_rows += [{"app_id": batch.app_id, "player_id": state.player_id, "rule": rule, "day": day,
                            "earned": pending.daily[(rule, day)],
                            "starts_at": pending.spans[(rule, day)][0] if (rule, day) in pending.spans else None,
                            "ends_at": pending.spans[(rule, day)][1] if (rule, day) in pending.spans else None}
                           for rule, day in sorted(pending.daily_dirty)]
            activities += pending.activities
            for track, level, spec, record in pending.rewards:
                self._reward(batch, state.player_id, track, level, spec, record)
        await repo.save_tracks(batch.session, track_rows)
        await repo.save_daily(batch.session, daily_rows)
        await repo.add_activities(batch.session, activities)

    @staticmethod
    def _reward(batch: Batch, player_id: str, track: str, level: int, spec: TrackDef, record: LogEvent) -> None:
        reward = spec.level_up_reward
        assert reward is not None
        # A deterministic key: replaying the log re-posts nothing.
        batch.credit(ledger.Credit(
            player_id, reward.currency, reward.amount, idempotency_key=f"level-up:{track}:{player_id}:{level}",
            source="level_up", reference={"track": track, "level": level, "event_id": record.event_id},
            description=f"{track} level {level} bonus"), record)

    async def reset(self, session: AsyncSession, app_id: str | None) -> None:
        await repo.reset(session, app_id)
