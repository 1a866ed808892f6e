"""Pure challenge rules shared by the worker and the routes: no I/O here.

- ``compile_challenges`` turns an app's challenge definitions into matchers, once per config version.
- ``advance`` folds one event into an objective's state (a small JSON dict stored per period).
- ``locked_reasons`` says why a player may not take a challenge at an instant.
- ``period_of`` / ``round_key`` / ``next_reset`` place an instant in the player's time zone.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from questline.challenges.schemas import ONCE, PERIOD_OF, ChallengeDef, Objective, ObjectiveProgress
from questline.gating.schemas import completed_metric
from questline.rules.conditions import (
    MISSING,
    ORDERED,
    Compiled,
    EvalContext,
    FieldCondition,
    compile_condition,
    path_getter,
)
from questline.rules.service import RuleSet


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def compare(actual: Any, op: str, expected: Any) -> bool:
    """``actual op expected`` with the rule engine's typing: numbers are not booleans."""
    if actual is None or actual is MISSING:
        return op == "ne"
    if isinstance(actual, bool) != isinstance(expected, bool):
        return op == "ne"
    if op == "eq":
        return bool(actual == expected)
    if op == "ne":
        return bool(actual != expected)
    if (_is_number(actual) and _is_number(expected)) or (isinstance(actual, str) and isinstance(expected, str)):
        return ORDERED[op](actual, expected)
    return False


@dataclass(frozen=True)
class CompiledObjective:
    index: int
    spec: Objective
    matches: Compiled
    value_of: Callable[[Mapping[str, Any]], Any] | None


@dataclass(frozen=True)
class CompiledChallenge:
    key: str
    spec: ChallengeDef
    objectives: tuple[CompiledObjective, ...]

    def fresh(self) -> list[dict[str, Any]]:
        return [fresh_state(o.spec) for o in self.objectives]


@dataclass(frozen=True)
class Compiled_:
    by_key: dict[str, CompiledChallenge]
    # event type -> [(challenge, objectives of that type)]
    by_type: dict[str, list[tuple[CompiledChallenge, tuple[CompiledObjective, ...]]]]


def _compile_objective(index: int, spec: Objective) -> CompiledObjective:
    parts = [compile_condition(spec.filter)]
    if spec.type == "exists" and spec.field is not None:
        op = spec.op or "exists"
        value = None if op == "exists" else spec.target
        parts.append(compile_condition(FieldCondition(field=spec.field, op=op, value=value)))
    matches: Compiled = parts[0] if len(parts) == 1 else (lambda ctx: all(p(ctx) for p in parts))
    value_of = path_getter(spec.field) if spec.type == "value" and spec.field else None
    return CompiledObjective(index, spec, matches, value_of)


def compile_challenges(ruleset: RuleSet) -> Compiled_:
    by_key: dict[str, CompiledChallenge] = {}
    by_type: dict[str, list[tuple[CompiledChallenge, tuple[CompiledObjective, ...]]]] = {}
    for key, spec in sorted(ruleset.of("challenge").items()):
        assert isinstance(spec, ChallengeDef)
        compiled = CompiledChallenge(key, spec, tuple(_compile_objective(i, o) for i, o in enumerate(spec.objectives)))
        by_key[key] = compiled
        types: dict[str, list[CompiledObjective]] = {}
        for objective in compiled.objectives:
            types.setdefault(objective.spec.event_type, []).append(objective)
        for event_type, objectives in types.items():
            by_type.setdefault(event_type, []).append((compiled, tuple(objectives)))
    return Compiled_(by_key, by_type)


# Objective state --------------------------------------------------------------------------------


def fresh_state(spec: Objective) -> dict[str, Any]:
    if spec.type == "time_window":
        return {"t": [], "best": 0, "met": False}
    if spec.type == "value":
        return {"v": None, "k": 0, "met": False}
    return {"n": 0, "met": False}


def advance(objective: CompiledObjective, state: dict[str, Any], ctx: EvalContext, at: datetime) -> bool:
    """Fold one event into the objective's state; returns whether anything changed."""
    spec = objective.spec
    if not objective.matches(ctx):
        return False
    if spec.type in ("count", "exists"):
        state["n"] = int(state.get("n", 0)) + 1
        state["met"] = state.get("met", False) or state["n"] >= (1 if spec.type == "exists" else int(spec.goal))
        return True
    if spec.type == "time_window":
        return _advance_window(spec, state, at)
    assert objective.value_of is not None
    value = objective.value_of(ctx.event)
    if value is MISSING or value is None or isinstance(value, dict | list):
        return False
    aggregate = spec.aggregate or "sum"
    current = state.get("v")
    if aggregate != "last" and not _is_number(value):
        return False
    if aggregate == "sum":
        state["v"] = (current or 0) + value
    elif aggregate == "max":
        state["v"] = value if current is None else max(current, value)
    elif aggregate == "min":
        state["v"] = value if current is None else min(current, value)
    else:
        state["v"] = value
    state["k"] = int(state.get("k", 0)) + 1
    state["met"] = state.get("met", False) or compare(state["v"], spec.op or "gte", spec.target)
    return True


def _advance_window(spec: Objective, state: dict[str, Any], at: datetime) -> bool:
    assert spec.window_seconds is not None
    window_ms = spec.window_seconds * 1000
    stamp = int(at.timestamp() * 1000)
    times = sorted([*state.get("t", []), stamp])
    newest = times[-1]
    times = [t for t in times if t > newest - window_ms]
    need = int(spec.goal)
    best = int(state.get("best", 0))
    # The most events inside any window ending at one of the kept stamps (two pointers).
    start = 0
    for end in range(len(times)):
        while times[end] - times[start] >= window_ms:
            start += 1
        best = max(best, end - start + 1)
    state["t"] = times[-need:] if len(times) > need else times
    state["best"] = min(best, need)
    state["met"] = state.get("met", False) or best >= need
    return True


def all_met(states: list[dict[str, Any]]) -> bool:
    return bool(states) and all(s.get("met") for s in states)


def progress_of(challenge: CompiledChallenge, states: list[dict[str, Any]] | None) -> list[ObjectiveProgress]:
    states = states if states is not None and len(states) == len(challenge.objectives) else challenge.fresh()
    out = []
    for objective, st in zip(challenge.objectives, states, strict=True):
        spec = objective.spec
        met = bool(st.get("met"))
        current: Any
        if spec.type == "count":
            current = min(int(st.get("n", 0)), int(spec.goal))
        elif spec.type == "exists":
            current = 1 if met else 0
        elif spec.type == "time_window":
            current = int(st.get("best", 0))
        else:
            current = st.get("v")
            if current is None and (spec.aggregate or "sum") == "sum":
                current = 0
        out.append(ObjectiveProgress(type=spec.type, event_type=spec.event_type, label=spec.label, current=current,
                                     target=spec.goal, met=met, window_seconds=spec.window_seconds))
    return out


def percent(progress: list[ObjectiveProgress]) -> int:
    """Mean completion of the objectives, 0-100; only counts and sums give partial credit."""
    if not progress:
        return 0
    total = 0.0
    for item in progress:
        if item.met:
            total += 1
        elif isinstance(item.current, int | float) and isinstance(item.target, int | float) and item.target > 0:
            total += max(0.0, min(1.0, float(item.current) / float(item.target)))
    return int(total * 100 // len(progress))


# Completions, gates and periods ---------------------------------------------------------------


@dataclass
class Totals:
    """A player's completions: per challenge, per category, and when each challenge was last completed."""

    counts: dict[str, int] = field(default_factory=dict)
    categories: dict[str, int] = field(default_factory=dict)
    last_at: dict[str, datetime] = field(default_factory=dict)

    def add(self, challenge: str, category: str, n: int, at: datetime) -> None:
        self.counts[challenge] = self.counts.get(challenge, 0) + n
        self.categories[category] = self.categories.get(category, 0) + n
        if challenge not in self.last_at or at > self.last_at[challenge]:
            self.last_at[challenge] = at

    def metrics(self) -> dict[str, int]:
        """``challenges.completed``, ``challenges.completed.<category>`` and ``challenge.<key>.completed``."""
        out = {f"challenges.completed.{cat}": n for cat, n in self.categories.items()}
        out["challenges.completed"] = sum(self.categories.values())
        out |= {completed_metric(key): n for key, n in self.counts.items()}
        return out


def locked_reasons(spec: ChallengeDef, levels: Mapping[str, int], metrics: Mapping[str, int | float],
                   completed: Mapping[str, int]) -> list[str]:
    """Why the player may not take this challenge now (empty: they may)."""
    reasons = []
    if spec.min_level is not None and levels.get(spec.min_level.track, 1) < spec.min_level.level:
        reasons.append(f"needs {spec.min_level.track} level {spec.min_level.level}")
    for key in spec.required_challenges:
        if completed.get(key, 0) < 1:
            reasons.append(f"needs challenge {key!r} completed")
    for key in spec.required_achievements:
        if metrics.get(f"achievement.{key}", 0) < 1:
            reasons.append(f"needs achievement {key!r}")
    return reasons


def in_dates(spec: ChallengeDef, at: datetime) -> bool:
    return (spec.starts_at is None or at >= spec.starts_at) and (spec.ends_at is None or at < spec.ends_at)


def period_of(spec: ChallengeDef, periods: Mapping[str, str]) -> str:
    """The period a challenge completes once in: the event's local day, week or month, or ``once``."""
    name = PERIOD_OF[spec.recurrence]
    return periods[name] if name is not None else ONCE


def round_key(period: str, round_: int) -> str:
    """The completion key of a round: the period itself, then ``period#2``, ``period#3``, …"""
    return period if round_ <= 1 else f"{period}#{round_}"


def base_period(key: str) -> str:
    return key.split("#", 1)[0]


def next_reset(spec: ChallengeDef, now: datetime, tz: ZoneInfo) -> datetime | None:
    """When the current period ends in the player's zone (or the challenge ends, if sooner)."""
    name = PERIOD_OF[spec.recurrence]
    reset: datetime | None = None
    if name is not None:
        today = now.astimezone(tz).date()
        if name == "day":
            start = today + timedelta(days=1)
        elif name == "week":
            start = today + timedelta(days=7 - today.weekday())
        else:
            start = date(today.year + today.month // 12, today.month % 12 + 1, 1)
        reset = datetime.combine(start, time(0), tzinfo=tz).astimezone(UTC)
    if spec.ends_at is not None and (reset is None or spec.ends_at < reset):
        return spec.ends_at.astimezone(UTC)
    return reset
