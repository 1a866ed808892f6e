"""The contract between the worker and each mechanic that reacts to events.

The worker takes a batch of one app's events in log order and hands each event, with the
player's in-memory state, to every processor in turn (stats first, so later processors see
the updated stats). Processors load the state they need once per batch (``load``), change it
in memory per event (``handle``), and write it back once (``flush``): all inside the batch's
single transaction, so a crash at any point loses nothing and counts nothing twice.

The worker is the only writer of derived state, which is why read-modify-write in memory is
safe here; the batch lock in ``processing`` guarantees one worker at a time.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, TypeVar, cast
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from questline.kit.clock import Clock
from questline.kit.periods import period_keys
from questline.pipeline.models import LIVE, EventRecord
from questline.rules.conditions import EvalContext
from questline.rules.service import RuleSet

T = TypeVar("T")


@dataclass
class StatCell:
    value: int = 0
    samples: int = 0
    last_at: datetime | None = None
    last_seq: int | None = None
    dirty: bool = False


@dataclass
class PlayerState:
    player_id: str
    timezone: ZoneInfo
    stats: dict[tuple[str, str], StatCell] = field(default_factory=dict)  # (stat, period_key)
    levels: dict[str, int] = field(default_factory=dict)
    metrics: dict[str, int | float] = field(default_factory=dict)
    # Per-area state, keyed by the class that holds it (see ``part``).
    extra: dict[type, Any] = field(default_factory=dict)

    def part(self, kind: type[T]) -> T:
        """This player's state of one area, created empty on first use (one per class)."""
        found = self.extra.get(kind)
        if found is None:
            found = self.extra[kind] = kind()
        return cast(T, found)

    def part_if_any(self, kind: type[T]) -> T | None:
        """The area's state if something created it (flush skips players an area never touched)."""
        return cast(T | None, self.extra.get(kind))

    def take_part(self, kind: type[T]) -> T | None:
        """Remove and return the area's state (for what lives only until the batch's flush)."""
        return cast(T | None, self.extra.pop(kind, None))


class StatView(Mapping[tuple[str, str], int]):
    """(stat, period) -> value in the periods of the event being processed."""

    def __init__(self, state: PlayerState, periods: dict[str, str]) -> None:
        self._state = state
        self._periods = periods

    def __getitem__(self, key: tuple[str, str]) -> int:
        stat, period = key
        cell = self._state.stats.get((stat, self._periods.get(period, period)))
        if cell is None:
            raise KeyError(key)
        return cell.value

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(())

    def __len__(self) -> int:
        return 0


@dataclass
class EventView:
    """One event as processors see it, with its periods in the player's time zone."""

    record: EventRecord
    periods: dict[str, str]
    as_mapping: dict[str, Any]

    @classmethod
    def of(cls, record: EventRecord, tz: ZoneInfo) -> EventView:
        mapping = {"type": record.type, "player_id": record.player_id, "data": record.data,
                   "timestamp": record.occurred_at.isoformat()}
        return cls(record, period_keys(record.occurred_at, tz), mapping)


class Batch:
    def __init__(self, session: AsyncSession, clock: Clock, ruleset: RuleSet, events: list[EventRecord],
                 players: dict[str, PlayerState]) -> None:
        self.session = session
        self.clock = clock
        self.ruleset = ruleset
        self.app_id = ruleset.app_id
        self.events = events
        self.players = players
        self.outbox: list[dict[str, Any]] = []
        # Values several processors of this batch share, read once (e.g. gating's memberships).
        self.memo: dict[str, Any] = {}

    def context(self, view: EventView, state: PlayerState) -> EvalContext:
        return EvalContext(event=view.as_mapping, stats=StatView(state, view.periods), levels=state.levels,
                           metrics=state.metrics)

    def emit(self, type_: str, player_id: str | None, payload: dict[str, Any], event: EventRecord | None) -> None:
        """Queue a domain event for the outbox; replays rebuild state but do not re-announce it."""
        if event is not None and event.pending != LIVE:
            return
        self.outbox.append({"app_id": self.app_id, "type": type_, "player_id": player_id,
                            "event_seq": event.seq if event else None, "payload": payload,
                            "created_at": self.clock.now(), "published_at": None})


class Processor(Protocol):
    name: str

    async def load(self, batch: Batch) -> None:
        """Read the state this processor needs for every player in the batch."""

    def handle(self, batch: Batch, view: EventView, state: PlayerState) -> None:
        """React to one event, in memory."""

    async def flush(self, batch: Batch) -> None:
        """Write what changed."""

    async def reset(self, session: AsyncSession, app_id: str | None) -> None:
        """Delete derived state before a replay (the ledger is never reset)."""
