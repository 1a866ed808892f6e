"""The outbox relay: every committed outbox row, in order, to every subscriber at least once.

A **subscriber** is anything with a ``name`` and an ``async handle(session, messages)``
(``Subscriber``); the composition root (``questline.mechanics``) registers them with ``install``.
For each subscriber the relay keeps a durable cursor (``relay_cursors``) and, in one database
transaction, locks that cursor, reads the next settled outbox rows after it, calls ``handle``
with them and advances the cursor. So:

- rows a subscriber writes with the ``session`` it is handed commit together with the progress:
  database effects happen exactly once, whatever crashes;
- effects outside the database (an HTTP call, a Redis publish) happen at least once: a relay
  killed after ``handle`` but before the commit hands the same messages over again. Each
  ``RelayMessage`` carries a stable ``id`` (``msg_<seq>``) and a ``position`` by which consumers
  deduplicate; ``kit.db.after_commit(session, hook)`` defers an outside effect until the progress
  has committed;
- messages come in one total order, the same on every run, so a player's messages are never
  reordered. On PostgreSQL a row is taken only once every transaction older than it has ended
  (its ``txid`` below the snapshot's xmin), so a row whose ``seq`` was drawn before a neighbour's
  but committed after it is never skipped; SQLite's writers are serial, so ``seq`` order is
  commit order;
- subscribers are independent: a slow or failing one delays only itself;
- several relays (one per worker process) may run: the cursor row is the lock, so each
  subscriber's batches are handed over by one relay at a time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from questline.kit.clock import ensure_utc
from questline.kit.db import run_after_commit
from questline.kit.runtime import Runtime
from questline.relay import repository as repo

SUBSCRIBERS = "relay.subscribers"
DEFAULT_BATCH = 500


@dataclass(frozen=True, slots=True)
class RelayMessage:
    """One outbox row as subscribers see it."""

    id: str  # stable across redeliveries: "msg_<seq>"
    position: tuple[int, int]  # (txid, seq): strictly increasing in delivery order
    seq: int
    app_id: str
    type: str
    player_id: str | None
    event_seq: int | None  # the log event it follows from, if any
    payload: dict[str, Any]
    created_at: datetime


class Subscriber(Protocol):
    """A consumer of the outbox. ``name`` keys its cursor: keep it stable (renaming starts over)."""

    name: str

    async def handle(self, session: AsyncSession, messages: Sequence[RelayMessage]) -> None:
        """Take a batch, in order. Rows written with ``session`` commit with the relay's progress;
        raising rolls both back and the batch comes again."""
        ...


def install(runtime: Runtime, subscribers: Sequence[Subscriber]) -> None:
    """Register subscribers on a runtime (once per name)."""
    found: dict[str, Subscriber] = runtime.extensions.setdefault(SUBSCRIBERS, {})
    for subscriber in subscribers:
        found.setdefault(subscriber.name, subscriber)


def subscribers(runtime: Runtime) -> list[Subscriber]:
    return list(runtime.extensions.get(SUBSCRIBERS, {}).values())


def message_of(row: Any) -> RelayMessage:
    txid, seq, app_id, type_, player_id, event_seq, payload, created_at = row
    return RelayMessage(id=f"msg_{seq}", position=(int(txid), int(seq)), seq=int(seq), app_id=app_id, type=type_,
                        player_id=player_id, event_seq=event_seq, payload=payload,
                        created_at=ensure_utc(created_at))


async def prepare(runtime: Runtime, *, from_head: bool = False) -> None:
    """Make the registered subscribers' cursors (idempotent). A new subscriber starts at the
    beginning of the outbox, or with ``from_head`` after what is already there."""
    async with runtime.sessions() as session, session.begin():
        start = await repo.head(session) if from_head else (0, 0)
        await repo.ensure_cursors(session, [s.name for s in subscribers(runtime)], runtime.clock.now(), start)


async def step(runtime: Runtime, subscriber: Subscriber, limit: int = DEFAULT_BATCH) -> int:
    """Hand the subscriber its next batch in one transaction; returns how many messages (0: none
    waiting, or another relay holds this subscriber now)."""
    async with runtime.sessions() as session:
        async with session.begin():
            position = await repo.claim_cursor(session, subscriber.name)
            if position is None:
                return 0
            rows = await repo.after(session, position, limit)
            if not rows:
                return 0
            messages = [message_of(row) for row in rows]
            await subscriber.handle(session, messages)
            await repo.advance(session, subscriber.name, messages[-1].position, len(messages), runtime.clock.now())
        await run_after_commit(session)
    return len(messages)


async def behind(runtime: Runtime) -> dict[str, bool]:
    """Which subscribers have settled messages waiting (a cheap read, no lock)."""
    async with runtime.read_sessions() as session:
        head = await repo.head(session)
        known = await repo.cursors(session)
    return {s.name: s.name not in known or known[s.name][0] < head for s in subscribers(runtime)}


async def lag(runtime: Runtime) -> dict[str, dict[str, Any]]:
    """Each subscriber's cursor, messages delivered, and whether it is behind the outbox."""
    async with runtime.read_sessions() as session:
        head = await repo.head(session)
        known = await repo.cursors(session)
    out: dict[str, dict[str, Any]] = {}
    for sub in subscribers(runtime):
        position, delivered, at = known.get(sub.name, ((0, 0), 0, None))
        out[sub.name] = {"position": list(position), "delivered": delivered, "behind": position < head,
                         "updated_at": at}
    return out


async def drain(runtime: Runtime, limit: int = DEFAULT_BATCH) -> int:
    """Relay until no subscriber has anything waiting (tests, the CLI); returns messages handed over."""
    await prepare(runtime)
    total = 0
    while True:
        moved = 0
        for subscriber in subscribers(runtime):
            moved += await step(runtime, subscriber, limit)
        total += moved
        if moved == 0:
            return total
