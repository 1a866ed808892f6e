"""Turning events into scores: compiled board specs and the per-batch score keeper.

A ``BoardSpec`` is one board's scoring, compiled once per rule-set version (leaderboards) or
per batch (competitions). The ``ScoreKeeper`` loads the batch's players' entries, folds each
matching event into them in memory, writes the changed ones back in the batch's transaction,
and hands the changes to the rank index only after the commit.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from questline.gating import service as gating
from questline.gating.schemas import Requirement
from questline.kit.db import after_commit
from questline.leaderboards import repository as repo
from questline.leaderboards.index import BoardRef, Entry, micros
from questline.leaderboards.schemas import ScoringFields
from questline.leaderboards.timing import period_key
from questline.pipeline.batch import Batch, EventView, PlayerState
from questline.pipeline.stats import number_getter
from questline.rules.conditions import Compiled, compile_condition
from questline.rules.schemas import StatDef
from questline.rules.service import RuleSet

MAX_STORED = 2**63 - 1
IndexHook = Callable[[dict[BoardRef, list[Entry]]], Callable[[], Any]]


@dataclass(frozen=True)
class BoardSpec:
    board: str
    event_type: str
    stat: str | None
    value_of: Callable[[dict[str, Any]], int | None]
    matches: Compiled
    operator: str
    descending: bool
    min_score: int | None
    period: str = "all"
    tz: ZoneInfo = field(default_factory=lambda: ZoneInfo("UTC"))
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    partition_attr: str | None = None
    gating: Requirement | None = None  # judged per event by the batch's gate

    def ref(self, app_id: str, key: str) -> BoardRef:
        return BoardRef(app_id, self.board, key, self.descending, self.min_score)

    def in_window(self, moment: datetime) -> bool:
        return (self.starts_at is None or moment >= self.starts_at) and (self.ends_at is None or moment < self.ends_at)


def compile_spec(board: str, scoring: ScoringFields, ruleset: RuleSet, *, period: str = "all",
                 tz: ZoneInfo | None = None, starts_at: datetime | None = None, ends_at: datetime | None = None,
                 partition_attr: str | None = None, gating: Requirement | None = None) -> BoardSpec | None:
    """None when the board cannot score (its stat is gone)."""
    if scoring.stat is not None:
        stat = ruleset.of("stat").get(scoring.stat)
        if not isinstance(stat, StatDef):
            return None
        event_type = stat.event_type
    else:
        assert scoring.event_type is not None
        event_type = scoring.event_type
    return BoardSpec(
        board=board, event_type=event_type, stat=scoring.stat,
        value_of=number_getter(scoring.field, scoring.scale), matches=compile_condition(scoring.filter),
        operator=scoring.operator, descending=scoring.order == "desc", min_score=scoring.min_score,
        period=period, tz=tz or ZoneInfo("UTC"), starts_at=starts_at, ends_at=ends_at, partition_attr=partition_attr,
        gating=gating,
    )


@dataclass
class Cell:
    score: int
    reached_at: datetime
    seq: int
    partition: str
    version: int
    dirty: bool = False


Eligible = Callable[[BoardSpec, str], bool]


def _stat_value(spec: BoardSpec, before: int, after: int) -> int | None:
    """What a stat's move brings to a board: the change (sum, increment) or the new value."""
    if after == before:
        return None
    return after - before if spec.operator in ("sum", "increment") else after


class ScoreKeeper:
    """One batch's scores for a set of boards: load, fold events in, write back, index after commit."""

    def __init__(self, specs: list[BoardSpec], eligible: Eligible | None = None) -> None:
        self.by_type: dict[str, list[BoardSpec]] = {}
        for spec in specs:
            self.by_type.setdefault(spec.event_type, []).append(spec)
        self.eligible = eligible
        self.cells: dict[tuple[str, str, str], Cell] = {}  # (board, period_key, player)
        self.stat_seen: dict[tuple[str, str], int] = {}  # (player, stat) -> all-time value already scored
        self.traits: dict[str, dict[str, Any]] = {}  # partitions read traits, never player-written fields
        self.changed: dict[tuple[str, str], tuple[int, EventView]] = {}  # (board, player) -> last score
        self.folds: list[tuple[str, int, datetime]] = []  # (board, value brought, event time) per scored event
        self.gate: gating.BatchGate | None = None

    def __bool__(self) -> bool:
        return bool(self.by_type)

    async def load(self, batch: Batch) -> None:
        if not self.by_type:
            return
        boards, periods, players = set(), set(), set()
        for record in batch.events:
            for spec in self.by_type.get(record.type, ()):
                boards.add(spec.board)
                periods.add(period_key(spec.period, record.occurred_at, spec.tz))
                players.add(record.player_id)
        if not players:
            return
        self.gate = await gating.batch_gate(batch, (s.gating for specs in self.by_type.values() for s in specs))
        for row in await repo.entries_of_players(batch.session, batch.app_id, boards, periods, players):
            self.cells[(row.board, row.period_key, row.player_id)] = Cell(
                row.score, row.reached_at, row.seq, row.partition, row.version)
        if any(spec.partition_attr for specs in self.by_type.values() for spec in specs):
            self.traits = await repo.traits_of(batch.session, batch.app_id, players)
        stats = {spec.stat for specs in self.by_type.values() for spec in specs if spec.stat}
        for pid in players:
            state = batch.players[pid]
            for stat in stats:
                cell = state.stats.get((stat, "all"))
                self.stat_seen[(pid, stat)] = cell.value if cell else 0

    def handle(self, batch: Batch, view: EventView, state: PlayerState) -> None:
        specs = self.by_type.get(view.record.type)
        if not specs:
            return
        record = view.record
        ctx = None
        moved: dict[str, tuple[int, int]] = {}  # stat -> (value before this event, value after)
        for spec in specs:
            if spec.stat is not None and spec.stat not in moved:
                cell = state.stats.get((spec.stat, "all"))
                moved[spec.stat] = (self.stat_seen.get((state.player_id, spec.stat), 0), cell.value if cell else 0)
            if not spec.in_window(record.occurred_at):
                continue
            if self.eligible is not None and not self.eligible(spec, state.player_id):
                continue
            if spec.gating is not None and (self.gate is None or not self.gate.allows(spec.gating, state)):
                continue
            if ctx is None:
                ctx = batch.context(view, state)
            if not spec.matches(ctx):
                continue
            value = spec.value_of(view.as_mapping) if spec.stat is None else _stat_value(spec, *moved[spec.stat])
            if value is None:
                continue
            partition = ""
            if spec.partition_attr is not None:
                attr = self.traits.get(state.player_id, {}).get(spec.partition_attr)
                if attr is None or attr == "" or isinstance(attr, dict | list):
                    continue
                partition = str(attr).lower() if isinstance(attr, bool) else str(attr)
                if "\x1f" in partition or len(partition) > 128:
                    continue  # not a group name an index can key
            self._fold(spec, period_key(spec.period, record.occurred_at, spec.tz), state.player_id, partition,
                       value, view)
        for stat, (_, after) in moved.items():
            self.stat_seen[(state.player_id, stat)] = after

    def _fold(self, spec: BoardSpec, key: str, player_id: str, partition: str, value: int, view: EventView) -> None:
        record = view.record
        slot = (spec.board, key, player_id)
        cell = self.cells.get(slot)
        if cell is None:
            new = 1 if spec.operator == "increment" else value
        elif spec.operator == "sum":
            new = cell.score + value
        elif spec.operator == "increment":
            new = cell.score + 1
        elif spec.operator == "best":
            new = max(cell.score, value) if spec.descending else min(cell.score, value)
        else:
            new = value
        new = max(-MAX_STORED, min(MAX_STORED, new))
        self.folds.append((spec.board, value, record.occurred_at))
        if cell is None:
            self.cells[slot] = Cell(new, record.occurred_at, record.seq, partition, 1, True)
        elif new != cell.score:
            cell.score, cell.reached_at, cell.seq = new, record.occurred_at, record.seq
            cell.partition, cell.version, cell.dirty = partition, cell.version + 1, True
        elif partition != cell.partition:
            cell.partition, cell.version, cell.dirty = partition, cell.version + 1, True
        else:
            return
        self.changed[(spec.board, player_id)] = (self.cells[slot].score, view)

    async def flush(self, batch: Batch, index_hook: IndexHook, *,
                    track_periods: bool = True) -> list[tuple[str, str, int, EventView]]:
        """Write changed entries; returns (board, player, score, event) of each board a player moved on.

        ``track_periods`` records each day/week/month/custom period that got entries, so the
        rollover job knows what to archive when it ends.
        """
        rows: list[dict[str, Any]] = []
        updates: dict[BoardRef, list[Entry]] = {}
        periods: set[tuple[str, str]] = set()
        now = batch.clock.now()
        specs = {spec.board: spec for specs in self.by_type.values() for spec in specs}
        refs: dict[tuple[str, str], BoardRef] = {}
        for (board, key, player), cell in self.cells.items():
            if not cell.dirty:
                continue
            cell.dirty = False
            rows.append({"app_id": batch.app_id, "board": board, "period_key": key, "player_id": player,
                         "partition": cell.partition, "score": cell.score, "reached_at": cell.reached_at,
                         "seq": cell.seq, "version": cell.version, "updated_at": now})
            ref = refs.get((board, key))
            if ref is None:
                ref = refs[(board, key)] = specs[board].ref(batch.app_id, key)
                if specs[board].period != "all":
                    periods.add((board, key))
            updates.setdefault(ref, []).append(
                Entry(player, cell.partition, cell.score, micros(cell.reached_at), cell.seq, cell.version))
        await repo.save_entries(batch.session, rows)
        if track_periods:
            await repo.open_periods(batch.session, batch.app_id, periods, now)
        if updates:
            after_commit(batch.session, index_hook(updates))
        moved = [(board, player, score, view) for (board, player), (score, view) in self.changed.items()]
        self.changed = {}
        return moved
