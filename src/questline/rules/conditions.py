"""The typed condition model, compiled once into closures (no ``eval``).

A condition is JSON, one of::

    {"all": [c, ...]}                       every one holds
    {"any": [c, ...]}                       at least one holds
    {"not": c}                              c does not hold
    {"field": "data.score", "op": "gte", "value": 100}     on the event being processed
    {"stat": "wins", "period": "week", "op": "gte", "value": 5}   a player stat
    {"level": "xp", "op": "gte", "value": 10}                     a track's level
    {"metric": "streak.current", "op": "gte", "value": 7}         any other player metric

Operators: eq, ne, gt, gte, lt, lte, in, not_in, contains, exists.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, model_validator

Op = Literal["eq", "ne", "gt", "gte", "lt", "lte", "in", "not_in", "contains", "exists"]
Period = Literal["all", "day", "week", "month"]
Scalar = int | float | str | bool
FIELD_PATH = r"^(type|player_id|timestamp|data(\.[A-Za-z0-9_\-]+)+)$"
# A player metric: "area.name", e.g. streak.daily.current or challenge.<key>.completed (keys may hold -).
METRIC_NAME = r"^[a-z_]+(\.[a-z0-9_-]+)+$"
ORDERED: dict[str, Callable[[Any, Any], bool]] = {
    "gt": operator.gt, "gte": operator.ge, "lt": operator.lt, "lte": operator.le,
}
MAX_DEPTH = 8


class _Base(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class _Comparison(_Base):
    op: Op
    value: Scalar | list[Scalar] | None = None

    @model_validator(mode="after")
    def _value_fits_op(self) -> _Comparison:
        if self.op in ("in", "not_in"):
            if not isinstance(self.value, list) or not self.value:
                raise ValueError(f"op {self.op!r} needs a non-empty list value")
        elif self.op == "exists":
            if self.value is not None and not isinstance(self.value, bool):
                raise ValueError("op 'exists' takes no value, or true/false")
        elif self.value is None or isinstance(self.value, list):
            raise ValueError(f"op {self.op!r} needs a single value")
        if self.op in ORDERED and isinstance(self.value, bool):
            raise ValueError(f"op {self.op!r} compares numbers or strings, not booleans")
        return self


class FieldCondition(_Comparison):
    field: str = Field(pattern=FIELD_PATH, description="type, player_id, timestamp, or data.<path>")


class StatCondition(_Comparison):
    stat: str = Field(min_length=1, max_length=100)
    period: Period = "all"


class LevelCondition(_Comparison):
    level: str = Field(min_length=1, max_length=100, description="a track key, or a combined level key")


class MetricCondition(_Comparison):
    metric: str = Field(min_length=1, max_length=100, pattern=METRIC_NAME)


class AllCondition(_Base):
    all: list[Condition] = Field(min_length=1, max_length=50)


class AnyCondition(_Base):
    any: list[Condition] = Field(min_length=1, max_length=50)


class NotCondition(_Base):
    not_: Condition = Field(alias="not")


_TAGS = ("all", "any", "not", "field", "stat", "level", "metric")


def _which(value: Any) -> str | None:
    if isinstance(value, dict):
        found = [tag for tag in _TAGS if tag in value]
        return found[0] if len(found) == 1 else None
    for tag, cls in _CLASSES.items():
        if isinstance(value, cls):
            return tag
    return None


Condition = Annotated[
    Annotated[AllCondition, Tag("all")]
    | Annotated[AnyCondition, Tag("any")]
    | Annotated[NotCondition, Tag("not")]
    | Annotated[FieldCondition, Tag("field")]
    | Annotated[StatCondition, Tag("stat")]
    | Annotated[LevelCondition, Tag("level")]
    | Annotated[MetricCondition, Tag("metric")],
    Discriminator(
        _which,
        custom_error_type="invalid_condition",
        custom_error_message="a condition has exactly one of: all, any, not, field, stat, level, metric",
    ),
]

_CLASSES: dict[str, type[BaseModel]] = {
    "all": AllCondition, "any": AnyCondition, "not": NotCondition, "field": FieldCondition,
    "stat": StatCondition, "level": LevelCondition, "metric": MetricCondition,
}
AllCondition.model_rebuild()
AnyCondition.model_rebuild()
NotCondition.model_rebuild()


@dataclass
class EvalContext:
    """What a condition can see: the event, and the player's state after earlier effects."""

    event: Mapping[str, Any]
    stats: Mapping[tuple[str, str], int] = field(default_factory=dict)  # (stat, period) -> value now
    levels: Mapping[str, int] = field(default_factory=dict)
    metrics: Mapping[str, int | float] = field(default_factory=dict)


Compiled = Callable[[EvalContext], bool]
MISSING = object()


def path_getter(path: str) -> Callable[[Mapping[str, Any]], Any]:
    """Reads ``a.b.c`` from nested mappings; ``MISSING`` when any step is absent."""
    parts = path.split(".")

    def get(event: Mapping[str, Any]) -> Any:
        current: Any = event
        for part in parts:
            # A plain dict (every event's data) is tested without the ABC's slower isinstance.
            if not (type(current) is dict or isinstance(current, Mapping)) or part not in current:
                return MISSING
            current = current[part]
        return current

    return get


def _comparator(op: str, expected: Any) -> Callable[[Any], bool]:
    if op == "exists":
        want = expected is not False
        return lambda actual: (actual is not MISSING and actual is not None) == want
    if op == "eq":
        return lambda actual: actual is not MISSING and _same(actual, expected)
    if op == "ne":
        return lambda actual: actual is MISSING or not _same(actual, expected)
    if op == "in":
        return lambda actual: actual is not MISSING and any(_same(actual, e) for e in expected)
    if op == "not_in":
        return lambda actual: actual is MISSING or not any(_same(actual, e) for e in expected)
    if op == "contains":
        def contains(actual: Any) -> bool:
            if isinstance(actual, str) and isinstance(expected, str):
                return expected in actual
            return isinstance(actual, list) and any(_same(item, expected) for item in actual)
        return contains
    compare = ORDERED[op]

    def ordered(actual: Any) -> bool:
        if actual is MISSING or isinstance(actual, bool):
            return False
        if isinstance(actual, int | float) and isinstance(expected, int | float):
            return compare(actual, expected)
        if isinstance(actual, str) and isinstance(expected, str):
            return compare(actual, expected)
        return False

    if type(expected) in (int, float):  # the usual threshold: a plain number compared at once
        def ordered_number(actual: Any) -> bool:
            kind = type(actual)
            if kind is int or kind is float:
                return bool(compare(actual, expected))
            return ordered(actual)
        return ordered_number
    return ordered


def _same(actual: Any, expected: Any) -> bool:
    # 1 == True in Python; in a rule, a number is not a boolean.
    if isinstance(actual, bool) != isinstance(expected, bool):
        return False
    return bool(actual == expected)


def compile_condition(condition: BaseModel | None, depth: int = 0) -> Compiled:
    """Turn a validated condition into a closure; ``None`` always holds."""
    if depth > MAX_DEPTH:
        raise ValueError(f"conditions nest at most {MAX_DEPTH} deep")
    if condition is None:
        return lambda ctx: True
    if isinstance(condition, AllCondition):
        parts = [compile_condition(c, depth + 1) for c in condition.all]
        return lambda ctx: all(p(ctx) for p in parts)
    if isinstance(condition, AnyCondition):
        parts = [compile_condition(c, depth + 1) for c in condition.any]
        return lambda ctx: any(p(ctx) for p in parts)
    if isinstance(condition, NotCondition):
        inner = compile_condition(condition.not_, depth + 1)
        return lambda ctx: not inner(ctx)
    if isinstance(condition, FieldCondition):
        get, check = path_getter(condition.field), _comparator(condition.op, condition.value)
        return lambda ctx: check(get(ctx.event))
    if isinstance(condition, StatCondition):
        key, check = (condition.stat, condition.period), _comparator(condition.op, condition.value)
        return lambda ctx: check(ctx.stats.get(key, 0))
    if isinstance(condition, LevelCondition):
        track, check = condition.level, _comparator(condition.op, condition.value)
        return lambda ctx: check(ctx.levels.get(track, 1))
    if isinstance(condition, MetricCondition):
        metric, check = condition.metric, _comparator(condition.op, condition.value)
        return lambda ctx: check(ctx.metrics.get(metric, 0))
    raise TypeError(f"not a condition: {type(condition).__name__}")


def leaf_reader(condition: BaseModel | None) -> tuple[Callable[[EvalContext], Any], Callable[[Any], bool]] | None:
    """A single stat, level or metric comparison as (read its value, test the value), read as
    ``compile_condition`` reads it; None for any other condition. For callers that want the value
    as well as the outcome (achievement progress) without reading it twice."""
    if isinstance(condition, StatCondition):
        key = (condition.stat, condition.period)
        return (lambda ctx: ctx.stats.get(key, 0)), _comparator(condition.op, condition.value)
    if isinstance(condition, LevelCondition):
        track = condition.level
        return (lambda ctx: ctx.levels.get(track, 1)), _comparator(condition.op, condition.value)
    if isinstance(condition, MetricCondition):
        metric = condition.metric
        return (lambda ctx: ctx.metrics.get(metric, 0)), _comparator(condition.op, condition.value)
    return None


def references(condition: BaseModel | None) -> list[tuple[str, str]]:
    """(kind, key) pairs a condition depends on: stats and levels must exist."""
    if condition is None:
        return []
    if isinstance(condition, AllCondition | AnyCondition):
        items = condition.all if isinstance(condition, AllCondition) else condition.any
        return [ref for c in items for ref in references(c)]
    if isinstance(condition, NotCondition):
        return references(condition.not_)
    if isinstance(condition, StatCondition):
        return [("stat", condition.stat)]
    if isinstance(condition, LevelCondition):
        return [("level", condition.level)]
    return []


@dataclass
class Reads:
    """What a condition's outcome depends on: the event itself (a field), and which stats (with
    their periods), levels and metrics of the player. Holding these fixed fixes the outcome."""

    event: bool = False
    stats: set[tuple[str, str]] = field(default_factory=set)
    levels: set[str] = field(default_factory=set)
    metrics: set[str] = field(default_factory=set)


def reads_of(condition: BaseModel | None, into: Reads | None = None) -> Reads:
    """Everything ``condition`` reads (added to ``into`` if given)."""
    found = into if into is not None else Reads()
    if isinstance(condition, AllCondition | AnyCondition):
        for item in condition.all if isinstance(condition, AllCondition) else condition.any:
            reads_of(item, found)
    elif isinstance(condition, NotCondition):
        reads_of(condition.not_, found)
    elif isinstance(condition, FieldCondition):
        found.event = True
    elif isinstance(condition, StatCondition):
        found.stats.add((condition.stat, condition.period))
    elif isinstance(condition, LevelCondition):
        found.levels.add(condition.level)
    elif isinstance(condition, MetricCondition):
        found.metrics.add(condition.metric)
    return found


def depth_of(condition: BaseModel | None) -> int:
    if isinstance(condition, AllCondition | AnyCondition):
        items = condition.all if isinstance(condition, AllCondition) else condition.any
        return 1 + max(depth_of(c) for c in items)
    if isinstance(condition, NotCondition):
        return 1 + depth_of(condition.not_)
    return 0
