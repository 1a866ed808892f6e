"""The stats processor: keeps every stat per player per period as events arrive."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from questline.pipeline.batch import Batch, EventView, PlayerState, StatCell
from questline.pipeline.models import LogEvent
from questline.rules import repository as repo
from questline.rules.conditions import Compiled, compile_condition
from questline.rules.schemas import StatDef
from questline.rules.service import RuleSet

_MISSING = object()


@dataclass(frozen=True)
class CompiledStat:
    key: str
    spec: StatDef
    matches: Compiled
    value_of: Callable[[dict[str, Any]], int | None]


def number_getter(path: str | None, scale: int) -> Callable[[dict[str, Any]], int | None]:
    """Reads an event's number at ``path`` (times ``scale``, rounded; stats are integers); 1 when no path.

    Booleans, strings and non-finite floats are not numbers here: the event does not count.
    """
    if path is None:
        return lambda event: 1
    parts = path.split(".")

    def get(event: dict[str, Any]) -> int | None:
        current: Any = event
        for part in parts:
            if not isinstance(current, dict) or part not in current:
                return None
            current = current[part]
        if isinstance(current, bool) or not isinstance(current, int | float):
            return None
        if isinstance(current, float) and not math.isfinite(current):
            return None
        return current * scale if isinstance(current, int) else round(current * scale)

    return get


def compile_stats(ruleset: RuleSet) -> dict[str, list[CompiledStat]]:
    by_type: dict[str, list[CompiledStat]] = {}
    for key, spec in ruleset.of("stat").items():
        assert isinstance(spec, StatDef)
        by_type.setdefault(spec.event_type, []).append(
            CompiledStat(key, spec, compile_condition(spec.filter), number_getter(spec.field, spec.scale))
        )
    return by_type


def _aggregate(cell: StatCell, aggregation: str, value: int, view: EventView) -> bool:
    """Fold one sample into a cell; returns whether the value changed."""
    before = cell.value
    record = view.record
    if aggregation in ("count", "sum"):
        cell.value += value
    elif aggregation == "max":
        cell.value = value if cell.samples == 0 else max(cell.value, value)
    elif aggregation == "min":
        cell.value = value if cell.samples == 0 else min(cell.value, value)
    elif aggregation == "last":
        # By event time, then log position, so replay order cannot change the answer.
        newer = cell.last_at is None or (record.occurred_at, record.seq) > (cell.last_at, cell.last_seq or 0)
        if newer:
            cell.value = value
    if cell.last_at is None or (record.occurred_at, record.seq) > (cell.last_at, cell.last_seq or 0):
        cell.last_at, cell.last_seq = record.occurred_at, record.seq
    cell.samples += 1
    cell.dirty = True
    return cell.value != before or aggregation == "count"


class Changed(dict[str, tuple[int, LogEvent]]):
    """Stats whose all-time value changed in this batch, with the event that changed it last."""


class StatsProcessor:
    name = "stats"
    defers_writes = True  # its flush only writes rows nothing in the batch reads after (see Processor)

    def concerned(self, ruleset: RuleSet) -> bool:
        return bool(ruleset.memo("stats.by_type", compile_stats))

    async def load(self, batch: Batch) -> None:
        stats = batch.ruleset.memo("stats.by_type", compile_stats)
        keys = {c.key for defs in stats.values() for c in defs}
        if not keys or not batch.players:
            return
        players = batch.players
        for player_id, stat, period_key, value, samples, last_at, last_seq in await repo.stats_of(
                batch.session, batch.app_id, players, keys, _period_keys_of(batch)):
            players[player_id].stats[(stat, period_key)] = StatCell(value, samples, last_at, last_seq, False)

    def handle(self, batch: Batch, view: EventView, state: PlayerState) -> None:
        stats = batch.ruleset.memo("stats.by_type", compile_stats).get(view.record.type)
        if not stats:
            return
        ctx = batch.context(view, state)
        changed = state.part(Changed)
        for compiled in stats:
            if not compiled.matches(ctx):
                continue
            value = compiled.value_of(view.as_mapping)
            if value is None:
                continue
            for period in compiled.spec.periods:
                cell = state.stats.setdefault((compiled.key, view.periods[period]), StatCell())
                if _aggregate(cell, compiled.spec.aggregation, value, view):
                    state.changed_stats.add(compiled.key)
                    if period == "all":
                        changed[compiled.key] = (cell.value, view.record)

    async def flush(self, batch: Batch) -> None:
        rows = []
        now = batch.clock.now()
        for state in batch.players.values():
            for (stat, period_key), cell in state.stats.items():
                if cell.dirty:
                    rows.append({"app_id": batch.app_id, "player_id": state.player_id, "stat": stat,
                                 "period_key": period_key, "value": cell.value, "samples": cell.samples,
                                 "last_at": cell.last_at, "last_seq": cell.last_seq, "updated_at": now})
                    cell.dirty = False
            for stat, (value, record) in (state.take_part(Changed) or Changed()).items():
                batch.emit("stat.changed", state.player_id, {"stat": stat, "value": value}, record)
        await repo.upsert_stats(batch.session, rows)

    async def reset(self, session: AsyncSession, app_id: str | None) -> None:
        await repo.delete_stats(session, app_id)


def _period_keys_of(batch: Batch) -> set[str]:
    keys = {"all"}
    for view in batch.views:
        keys.update(view.periods.values())
    return keys
