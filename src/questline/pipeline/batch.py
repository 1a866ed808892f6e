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
from questline.ledger import service as ledger
from questline.ledger.service import Credit
from questline.pipeline import repository as log
from questline.pipeline.models import LIVE, LogEvent
from questline.rules.conditions import EvalContext
from questline.rules.service import RuleSet

T = TypeVar("T")
K = TypeVar("K")
V = TypeVar("V")
_ABSENT: Any = object()


class Tracked(dict[K, V]):
    """A dict that notes in ``changed`` every key whose value it changed (a new value, not the same
    one written again). The achievements processor reads and clears it to evaluate only what an
    event can have moved."""

    __slots__ = ("changed",)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.changed: set[K] = set(self)

    def __setitem__(self, key: K, value: V) -> None:
        old = dict.get(self, key, _ABSENT)
        # 1 == True in Python, not in a rule (conditions tell booleans from numbers).
        if old is _ABSENT or type(old) is not type(value) or old != value:
            self.changed.add(key)
            dict.__setitem__(self, key, value)

    def update(self, *args: Any, **kwargs: Any) -> None:
        for key, value in dict(*args, **kwargs).items():
            self[key] = value

    def setdefault(self, key: K, default: V = None) -> V:  # type: ignore[assignment]
        if key not in self:
            self[key] = default
        return self[key]

    def __delitem__(self, key: K) -> None:
        self.changed.add(key)
        dict.__delitem__(self, key)

    def pop(self, key: K, *default: Any) -> Any:
        self.changed.add(key)
        return dict.pop(self, key, *default)

    def popitem(self) -> tuple[K, V]:
        key, value = dict.popitem(self)
        self.changed.add(key)
        return key, value

    def clear(self) -> None:
        self.changed.update(self)
        dict.clear(self)

    def __ior__(self, other: Any) -> Tracked[K, V]:  # type: ignore[override,misc]
        self.update(other)
        return self


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
    levels: Tracked[str, int] = field(default_factory=Tracked)
    metrics: Tracked[str, int | float] = field(default_factory=Tracked)
    # Stats whose value an event changed (in any period) since the achievements processor last looked.
    changed_stats: set[str] = field(default_factory=set)
    # Per-area state, keyed by the class that holds it (see ``part``).
    extra: dict[type, Any] = field(default_factory=dict)

    def part(self, kind: type[T]) -> T:
        """This player's state of one area, created empty on first use (one per class)."""
        found = self.extra.get(kind)
        if found is None:
            found = self.extra[kind] = kind()
        return cast("T", found)  # a string: no typing object built at run time (called per event and area)

    def part_if_any(self, kind: type[T]) -> T | None:
        """The area's state if something created it (flush skips players an area never touched)."""
        return cast("T | None", self.extra.get(kind))

    def take_part(self, kind: type[T]) -> T | None:
        """Remove and return the area's state (for what lives only until the batch's flush)."""
        return cast("T | None", self.extra.pop(kind, None))


class StatView(Mapping[tuple[str, str], int]):
    """(stat, period) -> value in the periods of the event being processed."""

    def __init__(self, state: PlayerState, periods: Mapping[str, str]) -> None:
        self._state = state
        self._periods = periods

    def __getitem__(self, key: tuple[str, str]) -> int:
        stat, period = key
        cell = self._state.stats.get((stat, self._periods.get(period, period)))
        if cell is None:
            raise KeyError(key)
        return cell.value

    def get(self, key: tuple[str, str], default: Any = None) -> Any:  # no KeyError round trip: conditions call it often
        stat, period = key
        cell = self._state.stats.get((stat, self._periods.get(period, period)))
        return default if cell is None else cell.value

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(())

    def __len__(self) -> int:
        return 0


@dataclass
class EventView:
    """One event as processors see it, with its periods in the player's time zone."""

    record: LogEvent
    periods: Mapping[str, str]
    as_mapping: dict[str, Any]
    # The evaluation context, made once per event and shared by the processors (it reads the
    # player's state live, so what earlier processors changed is seen by later ones).
    context: EvalContext | None = None

    @classmethod
    def of(cls, record: LogEvent, tz: ZoneInfo) -> EventView:
        mapping = {"type": record.type, "player_id": record.player_id, "data": record.data,
                   "timestamp": record.occurred_at.isoformat()}
        return cls(record, period_keys(record.occurred_at, tz), mapping)


class Batch:
    def __init__(self, session: AsyncSession, clock: Clock, ruleset: RuleSet, events: list[LogEvent],
                 players: dict[str, PlayerState], *, partitions: int = 1, players_exist: bool = False) -> None:
        self.session = session
        self.clock = clock
        self.ruleset = ruleset
        self.app_id = ruleset.app_id
        self.events = events
        self.players = players
        self.outbox: list[dict[str, Any]] = []
        # Rewards to post together once every processor has flushed (see ``credit``).
        self.credits: list[tuple[Credit, dict[str, Any] | None]] = []
        # Values several processors of this batch share, read once (e.g. gating's memberships).
        self.memo: dict[str, Any] = {}
        self._views: list[EventView] | None = None
        self.partitions = partitions
        # The worker created every player of the batch in this transaction: rewards need not look them up.
        self.players_exist = players_exist

    @property
    def views(self) -> list[EventView]:
        """The batch's events as processors see them (periods in each player's time zone), in order."""
        if self._views is None:
            self._views = [EventView.of(e, self.players[e.player_id].timezone) for e in self.events]
        return self._views

    def context(self, view: EventView, state: PlayerState) -> EvalContext:
        ctx = view.context
        if ctx is None or ctx.levels is not state.levels:  # made for this player's state only
            ctx = view.context = EvalContext(event=view.as_mapping, stats=StatView(state, view.periods),
                                             levels=state.levels, metrics=state.metrics)
        return ctx

    def emit(self, type_: str, player_id: str | None, payload: dict[str, Any],
             event: LogEvent | None) -> dict[str, Any] | None:
        """Queue a domain event for the outbox; replays rebuild state but do not re-announce it."""
        if event is not None and event.pending != LIVE:
            return None
        row = {"app_id": self.app_id, "type": type_, "player_id": player_id, "event_seq": event.seq if event else None,
               "payload": payload, "created_at": self.clock.now(), "published_at": None}
        self.outbox.append(row)
        return row

    def credit(self, credit: Credit, event: LogEvent | None) -> None:
        """Pay a reward: the worker posts every credit of the batch in one go after the flushes
        (``ledger.post_credits``), and ``points.credited`` is announced here, in the outbox's order,
        only if this posting paid (a replayed key pays nothing and announces nothing)."""
        slot = self.emit("points.credited", credit.player_id,
                         {"currency": credit.currency, "amount": credit.amount, "source": credit.source}, event)
        self.credits.append((credit, slot))

    async def append_events(self, rows: list[dict[str, Any]]) -> None:
        """Append engine-made events to the log (processed by a later batch)."""
        await log.append(self.session, rows, partitions=self.partitions)

    async def write_effects(self) -> None:
        """After the processors' flushes: post the queued credits, then write the outbox."""
        if self.credits:
            paid = await ledger.post_credits(self.session, self.clock, app_id=self.app_id,
                                             credits=[credit for credit, _ in self.credits],
                                             existing_players=self.players if self.players_exist else ())
            self.settle_credits(paid)
        await log.add_outbox(self.session, self.outbox)
        self.outbox = []

    def settle_credits(self, transaction_ids: list[str | None]) -> None:
        """Fill in the announcements of the credits that paid; drop those of the ones that did not."""
        unpaid = set()
        for (_, slot), txn_id in zip(self.credits, transaction_ids, strict=True):
            if slot is None:
                continue
            if txn_id is None:
                unpaid.add(id(slot))
            else:
                slot["payload"]["transaction_id"] = txn_id
        if unpaid:
            self.outbox = [row for row in self.outbox if id(row) not in unpaid]
        self.credits = []


class Processor(Protocol):
    """A mechanic reacting to events. A processor may also say ``defers_writes = True``: its
    flush only writes (through ``kit.db.Bulk``) rows that nothing later in the batch reads or
    references, so the worker queues those writes (``kit.db.deferring``) and sends them with the
    batch's other deferred writes as one statement."""

    name: str

    def concerned(self, ruleset: RuleSet) -> bool:
        """Whether this app's definitions give it anything to do: a batch neither loads, calls
        per event nor flushes a processor that is not (issue 11: seven of nine with the
        benchmark's rules, each about 0.1 ms of CPU per batch of 100 for nothing)."""

    async def load(self, batch: Batch) -> None:
        """Read the state this processor needs for every player in the batch."""

    def handle(self, batch: Batch, view: EventView, state: PlayerState) -> None:
        """React to one event, in memory."""

    async def flush(self, batch: Batch) -> None:
        """Write what changed."""

    async def reset(self, session: AsyncSession, app_id: str | None) -> None:
        """Delete derived state before a replay (the ledger is never reset)."""
