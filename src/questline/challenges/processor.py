"""The challenges processor: progress from events, completions once per period, rewards.

Runs after progression (so level gates see this event's level-ups) and before achievements
(so ``challenges.completed`` metrics are current when achievement criteria are judged).

Per event and challenge: skip it outside the challenge's dates or while the player is locked
out (level, required challenges, ``achievement.<key>`` metrics, the ``gating`` requirement); find the period in the
player's time zone; skip a period already completed (or a repeatable challenge cooling
down); fold the event into the objectives; when all are met, complete (auto) or mark the
period ready to claim (claim). ``flush`` inserts completions under the unique constraint and
pays only the rows it inserted: points through the ledger and XP as a ``questline.xp.award``
event (processed in a later batch), both keyed by ``challenge:<key>:<player>:<period>``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from questline.challenges import evaluate as ev
from questline.challenges import repository as repo
from questline.challenges import service
from questline.challenges.models import ChallengeCompletion
from questline.challenges.schemas import ONCE, PERIOD_OF, ChallengeDef
from questline.gating import service as gating
from questline.kit.periods import overlaps, period_span
from questline.kit.runtime import Runtime
from questline.pipeline.batch import Batch, EventView, PlayerState
from questline.pipeline.models import LIVE, REPLAY, LogEvent
from questline.progression.processor import AWARD_EVENT
from questline.rules.service import RuleSet

Span = tuple[datetime, datetime]
# A month is the longest period: completions whose span ends this long before a batch's first
# event (or starts this long after its last) cannot overlap a period any of its events fall in.
SPAN_REACH = timedelta(days=32)


def _span(spec: ChallengeDef, period: str, tz: ZoneInfo) -> Span | None:
    """The UTC span of a challenge's local period (None for one-time and event challenges)."""
    name = PERIOD_OF[spec.recurrence]
    return None if name is None or period == ONCE else period_span(name, period, tz)


@dataclass
class Cell:
    round: int
    objectives: list[dict[str, Any]]
    met_at: datetime | None
    dirty: bool = False


@dataclass
class Completion:
    challenge: ev.CompiledChallenge
    period: str
    record: LogEvent
    span: Span | None = None


@dataclass
class PlayerChallenges:
    totals: ev.Totals = field(default_factory=ev.Totals)
    cells: dict[tuple[str, str], Cell] = field(default_factory=dict)
    done: set[tuple[str, str]] = field(default_factory=set)  # (challenge, period or period#round)
    completions: list[Completion] = field(default_factory=list)
    progressed: dict[tuple[str, str], LogEvent] = field(default_factory=dict)
    # challenge -> (base period, its UTC span) of each completion near this batch's events
    spans: dict[str, list[tuple[str, Span]]] = field(default_factory=dict)

    def overlapped(self, challenge: str, period: str, span: Span) -> bool:
        """Whether another period completed already covers part of this one (time zone hopping)."""
        return any(other != period and overlaps(span, taken) for other, taken in self.spans.get(challenge, ()))

    # Replay: completions made by a person after this point of the log, by log position; they
    # count from the first event past it, as they did live.
    later: list[ChallengeCompletion] = field(default_factory=list)

    def catch_up(self, seq: int) -> bool:
        """Count the person-made completions made before log position ``seq``; True if any."""
        caught = False
        while self.later and (self.later[0].log_seq or 0) < seq:
            done = self.later.pop(0)
            self.totals.add(done.challenge, done.category, 1, done.completed_at)
            self.done.add((done.challenge, done.period_key))
            caught = True
        return caught


def _of(state: PlayerState) -> PlayerChallenges:
    return state.part(PlayerChallenges)


def _has_challenges(ruleset: RuleSet) -> bool:
    return bool(service.compiled(ruleset).by_key)


class ChallengeProcessor:
    name = "challenges"

    def __init__(self, runtime: Runtime | None = None) -> None:
        # Completions' webhook, in-game and token rewards become fulfilment records (needs the runtime).
        self._runtime = runtime

    def concerned(self, ruleset: RuleSet) -> bool:
        return _has_challenges(ruleset)

    async def load(self, batch: Batch) -> None:
        if not _has_challenges(batch.ruleset) or not batch.players:
            return
        players = list(batch.players)
        await gating.batch_gate(batch, (c.spec.gating for c in service.compiled(batch.ruleset).by_key.values()))
        later = await self._made_later(batch)
        totals = await service.totals_of(batch.session, batch.app_id, players, {c.id for c in later})
        for player_id, state in batch.players.items():
            mine = _of(state)
            mine.totals = totals.get(player_id, ev.Totals())
            mine.later = sorted((c for c in later if c.player_id == player_id), key=lambda c: (c.log_seq, c.id))
            state.metrics.update(mine.totals.metrics())
        if not batch.events:
            return
        skip = {c.id for c in later}
        keys = {ONCE}
        for view in batch.views:
            keys.update(view.periods[p] for p in ("day", "week", "month"))
        for row in await repo.cells_of(batch.session, batch.app_id, players, keys):
            _of(batch.players[row.player_id]).cells[(row.challenge, row.period_key)] = Cell(
                row.round, list(row.objectives), row.met_at)
        for done in await repo.done_in(batch.session, batch.app_id, players, keys):
            if done.id not in skip:
                _of(batch.players[done.player_id]).done.add((done.challenge, done.period_key))
        times = [view.record.occurred_at for view in batch.views]
        for player_id, key, period, start, end in await repo.completion_spans(
                batch.session, batch.app_id, players, min(times) - SPAN_REACH, max(times) + SPAN_REACH):
            _of(batch.players[player_id]).spans.setdefault(key, []).append((ev.base_period(period), (start, end)))

    @staticmethod
    async def _made_later(batch: Batch) -> list[ChallengeCompletion]:
        """In a replay, the person-made completions each player's replayed events come before."""
        first: dict[str, int] = {}
        for event in batch.events:
            if event.pending == REPLAY and event.player_id not in first:
                first[event.player_id] = event.seq
        return list(await repo.made_after(batch.session, batch.app_id, first)) if first else []

    def handle(self, batch: Batch, view: EventView, state: PlayerState) -> None:
        waiting = state.part_if_any(PlayerChallenges)
        if waiting is not None and waiting.later and waiting.catch_up(view.record.seq):
            state.metrics.update(waiting.totals.metrics())
        entries = service.compiled(batch.ruleset).by_type.get(view.record.type)
        if not entries:
            return
        mine = _of(state)
        at = view.record.occurred_at
        ctx = batch.context(view, state)
        # Gates and metrics are judged as they stood before this event, whatever order the
        # challenges are visited in; this event's completions count from the next event on
        # (and for later processors, such as achievements, at once).
        completed: list[Completion] = []
        for challenge, objectives in entries:
            spec = challenge.spec
            if not ev.in_dates(spec, at) or ev.locked_reasons(spec, state.levels, state.metrics, mine.totals.counts):
                continue
            if spec.gating is not None and not gating.gate_of(batch).allows(spec.gating, state):
                continue
            period = ev.period_of(spec, view.periods)
            span = _span(spec, period, state.timezone)
            if span is not None and mine.overlapped(challenge.key, period, span):
                continue  # an instant of this period already counted for another one (the time zone moved)
            cell = mine.cells.get((challenge.key, period))
            if cell is None or len(cell.objectives) != len(challenge.objectives):
                cell = Cell(cell.round if cell else 1, challenge.fresh(), None)
            if spec.repeatable:
                while (challenge.key, ev.round_key(period, cell.round)) in mine.done:
                    cell.round, cell.objectives, cell.met_at, cell.dirty = cell.round + 1, challenge.fresh(), None, True
                if cell.dirty:
                    mine.cells[(challenge.key, period)] = cell
                last = mine.totals.last_at.get(challenge.key)
                if spec.cooldown_seconds and last is not None and at < last + timedelta(seconds=spec.cooldown_seconds):
                    continue
            elif (challenge.key, period) in mine.done:
                continue
            if cell.met_at is not None:
                continue  # waiting for its claim
            changed = False
            for objective in objectives:
                changed = ev.advance(objective, cell.objectives[objective.index], ctx, at) or changed
            if not changed:
                continue
            cell.dirty = True
            mine.cells[(challenge.key, period)] = cell
            mine.progressed[(challenge.key, period)] = view.record
            if ev.all_met(cell.objectives):
                if spec.completion_mode == "claim":
                    cell.met_at = at
                else:
                    completed.append(self._complete(mine, challenge, period, cell, view.record, span))
        if completed:
            for done in completed:
                mine.totals.add(done.challenge.key, done.challenge.spec.category, 1, at)
            mine.completions += completed
            state.metrics.update(mine.totals.metrics())

    @staticmethod
    def _complete(mine: PlayerChallenges, challenge: ev.CompiledChallenge, period: str, cell: Cell,
                  record: LogEvent, span: Span | None) -> Completion:
        key = ev.round_key(period, cell.round)
        mine.done.add((challenge.key, key))
        if span is not None:
            mine.spans.setdefault(challenge.key, []).append((period, span))
        if challenge.spec.repeatable:
            cell.round, cell.objectives, cell.met_at = cell.round + 1, challenge.fresh(), None
        else:
            cell.met_at = record.occurred_at
        return Completion(challenge, key, record, span)

    async def flush(self, batch: Batch) -> None:
        now = batch.clock.now()
        progress_rows: list[dict[str, Any]] = []
        completions: list[tuple[str, Completion]] = []
        for state in batch.players.values():
            mine = state.part_if_any(PlayerChallenges)
            if mine is None:
                continue
            for (key, period), cell in mine.cells.items():
                if cell.dirty:
                    progress_rows.append({"app_id": batch.app_id, "player_id": state.player_id, "challenge": key,
                                          "period_key": period, "round": cell.round, "objectives": cell.objectives,
                                          "met_at": cell.met_at, "updated_at": now})
                    cell.dirty = False
            for (key, period), record in mine.progressed.items():
                self._announce_progress(batch, state.player_id, key, period, mine, record)
            mine.progressed.clear()
            completions += [(state.player_id, c) for c in mine.completions]
            mine.completions.clear()
        await repo.save_progress(batch.session, progress_rows)
        await self._record_completions(batch, completions)

    @staticmethod
    def _announce_progress(batch: Batch, player_id: str, key: str, period: str, mine: PlayerChallenges,
                           record: LogEvent) -> None:
        challenge = service.compiled(batch.ruleset).by_key[key]
        cell = mine.cells[(key, period)]
        progress = ev.progress_of(challenge, cell.objectives)
        if challenge.spec.repeatable or cell.met_at is None:
            status = "in_progress"
        else:
            status = "ready_to_claim" if challenge.spec.completion_mode == "claim" else "completed"
        batch.emit("challenge.progressed", player_id, {
            "challenge": key, "period": period, "status": status, "progress_percent": ev.percent(progress),
            "objectives": [p.model_dump(mode="json") for p in progress]}, record)

    async def _record_completions(self, batch: Batch, completions: list[tuple[str, Completion]]) -> None:
        if not completions:
            return
        rows: list[dict[str, Any]] = [
            {"app_id": batch.app_id, "player_id": player_id, "challenge": c.challenge.key, "period_key": c.period,
             "category": c.challenge.spec.category, "source": "auto", "rewards": service.rewards_of(c.challenge.spec),
             "claim_id": None, "event_id": c.record.event_id, "completed_at": c.record.occurred_at,
             "period_start": c.span[0] if c.span else None, "period_end": c.span[1] if c.span else None}
            for player_id, c in completions]
        # A replayed completion gets back the id it had, so history keeps its ids and order.
        again = {(player_id, c.challenge.key, c.period) for player_id, c in completions if c.record.pending == REPLAY}
        ids = await repo.replayed_ids(batch.session, batch.app_id, again)
        for row, (player_id, c) in zip(rows, completions, strict=True):
            found = ids.get((player_id, c.challenge.key, c.period))
            if found is not None:
                row["id"] = found
        inserted = await repo.insert_completions(batch.session, rows)
        await repo.forget_replayed_ids(batch.session, batch.app_id, set(ids))
        xp_events = []
        now = batch.clock.now()
        for (player_id, c), row in zip(completions, rows, strict=True):
            if (player_id, c.challenge.key, c.period) not in inserted:
                continue  # completed meanwhile by a person: it was paid then
            spec = c.challenge.spec
            batch.emit("challenge.completed", player_id, {
                "challenge": c.challenge.key, "period": c.period, "category": spec.category, "source": "auto",
                "rewards": row["rewards"], "completed_at": c.record.occurred_at.isoformat()}, c.record)
            credit = service.points_credit(player_id, c.challenge.key, spec, c.period)
            if credit is not None:
                batch.credit(credit, c.record)
            if self._runtime is not None:
                await service.fulfil_rewards(batch.session, self._runtime, app_id=batch.app_id, player_id=player_id,
                                             key=c.challenge.key, spec=spec, period=c.period)
            award = service.xp_award(c.challenge.key, spec, c.period)
            if award is not None:
                xp_events.append({"app_id": batch.app_id, "event_id": service.xp_event_id(c.challenge.key, player_id,
                                                                                            c.period),
                                  "player_id": player_id, "type": AWARD_EVENT, "data": award,
                                  "occurred_at": c.record.occurred_at, "received_at": now, "source": "internal",
                                  "pending": LIVE})
        # Processed in a later batch (the worker keeps going while events are pending).
        await batch.append_events(xp_events)

    async def reset(self, session: AsyncSession, app_id: str | None) -> None:
        await repo.reset(session, app_id)
