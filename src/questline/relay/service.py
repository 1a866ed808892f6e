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
  ``RelayMessage`` carries a stable ``id`` (``msg_<seq>``) by which consumers deduplicate;
  ``kit.db.after_commit(session, hook)`` defers an outside effect until the progress has committed;
- rows are handed over as their transactions commit, a transaction's rows in ``seq`` order, so a
  player's messages (one partition writer at a time) are never reordered. On PostgreSQL the relay
  reads only committed transactions' rows (``pg_visible_in_snapshot`` on the row's ``txid``) and
  its cursor remembers the transactions above the snapshot's xmin it has handed over, so a
  transaction that drew its ``seq`` early but committed late is never skipped, and an open
  transaction (of this database or another) holds back no one else's rows. SQLite's writers are
  serial, so ``seq`` order is commit order;
- subscribers are independent: a slow or failing one delays only itself;
- the outbox is split into ``relay_partitions`` partitions (``outbox.partition``: by app and player,
  as the event log is), and each subscriber has a cursor per partition. Several relays (one per
  worker process) may run: a cursor row is the lock of its (subscriber, partition), taken with
  ``FOR UPDATE SKIP LOCKED``, so each partition's batches are handed over by one relay at a time
  and a relay that finds one held moves on to the next. A player's rows are all in one partition,
  so their order holds; the order across partitions (across players) is not promised.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from questline.kit.clock import ensure_utc
from questline.kit.db import run_after_commit
from questline.kit.runtime import Runtime
from questline.relay import repository as repo

SUBSCRIBERS = "relay.subscribers"
PARTITIONS = "relay.partitions"  # partitions with cursors (``prepare``)
DEFAULT_BATCH = 500


@dataclass(frozen=True, slots=True)
class RelayMessage:
    """One outbox row as subscribers see it."""

    id: str  # stable across redeliveries: "msg_<seq>"
    position: tuple[int, int]  # (txid, seq): the writing transaction (0 on SQLite) and the row
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


def partitions(runtime: Runtime) -> list[int]:
    """The relay partitions this process relays: the setting's, and any left by a larger earlier
    setting that still has cursors (``prepare`` finds them)."""
    found: set[int] = runtime.extensions.get(PARTITIONS, set())
    return sorted(found | set(range(runtime.settings.relay_partitions)))


async def prepare(runtime: Runtime, *, from_head: bool = False) -> None:
    """Make the registered subscribers' cursors, one per partition (idempotent). A new subscriber
    starts at the beginning of the outbox, or with ``from_head`` after what is already there."""
    names = [s.name for s in subscribers(runtime)]
    async with runtime.sessions() as session, session.begin():
        wanted = range(runtime.settings.relay_partitions)
        start = {p: await repo.head(session, p) for p in wanted} if from_head else None
        await repo.ensure_cursors(session, names, wanted, runtime.clock.now(), start)
        runtime.extensions[PARTITIONS] = await repo.partitions_of(session, names)


MAX_DONE = 100_000  # transactions remembered above the low mark (a very long transaction holds it back)


def advance(cursor: repo.Cursor, rows: Sequence[tuple[Any, ...]], xmin: int | None, full: bool) -> repo.Cursor:
    """The cursor after handing ``rows`` over (``full``: the batch was cut by its size).

    Rows come by transaction id: a transaction of the batch below its last one was read to its
    end, and so was every transaction cut earlier (``partial``) below the last one; with a batch not
    full, everything visible was read. Every transaction below the snapshot's xmin has ended."""
    if xmin is None:  # SQLite: seq order is commit order
        return repo.Cursor(seq=int(rows[-1][1]))
    last_txid, last_seq = int(rows[-1][0]), int(rows[-1][1])
    done = set(cursor.done) | {int(r[0]) for r in rows}
    partial = {int(t): s for t, s in cursor.partial.items()}
    if full:
        done |= {t for t in partial if t < last_txid}
        partial = {t: s for t, s in partial.items() if t > last_txid}
        done.discard(last_txid)
        partial[last_txid] = last_seq
        low = min(xmin, last_txid)
    else:
        done |= set(partial)
        partial = {}
        low = xmin
    low = max(low, cursor.low)
    kept = sorted(t for t in done if t >= low)
    return repo.Cursor(low=low, done=kept[-MAX_DONE:], partial={str(t): s for t, s in partial.items() if t >= low})


async def step(runtime: Runtime, subscriber: Subscriber, limit: int = DEFAULT_BATCH, partition: int = 0) -> int:
    """Hand the subscriber its next batch of one partition in one transaction (``step_many`` of one
    pair); returns how many messages (0: none waiting, or another relay holds this (subscriber,
    partition) now)."""
    return (await step_many(runtime, {partition: [subscriber]}, limit))[(subscriber.name, partition)] or 0


async def step_together(runtime: Runtime, subscribers: Sequence[Subscriber], limit: int = DEFAULT_BATCH,
                        partition: int = 0) -> dict[str, int | None]:
    """``step_many`` for several subscribers of one partition: the messages handed to each (0: none
    waiting; None: another relay holds its cursor)."""
    moved = await step_many(runtime, {partition: subscribers}, limit)
    return {s.name: moved[(s.name, partition)] for s in subscribers}


class Backlogs:
    """Which (subscriber, partition) pairs have a backlog (their last batch was full), and so how a
    relay round's pairs go: the partitions with a few messages each together, in one transaction
    (``step_many``); a partition with a backlog in a transaction of its own, so several relays share
    a backlog partition by partition, as the worker's batches do."""

    def __init__(self) -> None:
        self.pairs: set[tuple[str, int]] = set()

    def groups(self, ready: Mapping[int, Sequence[Subscriber]]) -> list[dict[int, Sequence[Subscriber]]]:
        alone = [p for p, subs in ready.items() if any((s.name, p) in self.pairs for s in subs)]
        light = {p: subs for p, subs in ready.items() if p not in alone}
        return [group for group in (light, *({p: ready[p]} for p in alone)) if group]

    def note(self, pair: tuple[str, int], handed: int | None, limit: int) -> None:
        (self.pairs.add if handed == limit else self.pairs.discard)(pair)


async def step_many(runtime: Runtime, ready: Mapping[int, Sequence[Subscriber]],
                    limit: int = DEFAULT_BATCH) -> dict[tuple[str, int], int | None]:
    """Hand subscribers their next batch of several partitions (``ready``: partition -> subscribers)
    in one transaction: their cursors locked with one statement, the rows read with one statement
    (once for the cursors of a partition at the same position: subscribers keep pace), one ``handle``
    per subscriber with its messages of every partition (each partition's in order), the cursors
    saved with one call, one commit. Returns the messages handed over per (subscriber, partition)
    (0: none waiting; None: another relay holds that cursor). With single events arriving, each
    partition has a few messages a round: per-partition transactions would cost more than the
    messages.

    If a subscriber raises, nothing of the transaction stands and the error propagates: the caller
    then steps each subscriber alone (``step``), so the failing one fails alone. The others get
    their batch again, as after a crash (at least once, by message id)."""
    by_name = {s.name: s for subs in ready.values() for s in subs}
    moved: dict[tuple[str, int], int | None] = {(s.name, p): None for p, subs in ready.items() for s in subs}
    async with runtime.sessions() as session:
        async with session.begin():
            claimed = await repo.claim_cursors(session, list(moved))
            reads: dict[tuple[int, tuple[Any, ...]], int] = {}
            wanted: list[tuple[int, repo.Cursor]] = []
            for (_, partition), cursor in claimed.items():
                key = (partition, cursor.position())
                if key not in reads:
                    reads[key] = len(wanted)
                    wanted.append((partition, cursor))
            found = await repo.next_rows_many(session, wanted, limit) if wanted else []
            messages = [[message_of(row) for row in rows] for rows, _ in found]
            handed: dict[str, list[RelayMessage]] = {}
            saves: list[tuple[str, int, repo.Cursor, int]] = []
            for pair in moved:
                held = claimed.get(pair)
                if held is None:
                    continue
                name, partition = pair
                i = reads[(partition, held.position())]
                rows, xmin = found[i]
                moved[pair] = len(rows)
                if rows:
                    handed.setdefault(name, []).extend(messages[i])
                    saves.append((name, partition, advance(held, rows, xmin, len(rows) == limit), len(rows)))
            for name, batch in handed.items():
                await by_name[name].handle(session, batch)
            await repo.save_cursors(session, saves, runtime.clock.now())
        await run_after_commit(session)
    return moved


async def waiting(runtime: Runtime) -> set[tuple[str, int]]:
    """The (subscriber, partition) pairs with committed messages waiting (a read, no lock)."""
    async with runtime.read_sessions() as session:
        return await repo.waiting(session, [s.name for s in subscribers(runtime)])


async def behind(runtime: Runtime) -> dict[str, bool]:
    """Which subscribers have committed messages waiting in some partition, or no cursor yet."""
    pending = await waiting(runtime)
    async with runtime.read_sessions() as session:
        known = {name for name, _ in await repo.cursors(session, [s.name for s in subscribers(runtime)])}
    return {sub.name: sub.name not in known or any(name == sub.name for name, _ in pending)
            for sub in subscribers(runtime)}


async def lag(runtime: Runtime) -> dict[str, dict[str, Any]]:
    """Each subscriber's messages delivered (all partitions), when it last moved, and whether it is behind."""
    waiting_now = await behind(runtime)
    async with runtime.read_sessions() as session:
        known = await repo.cursors(session, [s.name for s in subscribers(runtime)])
    out: dict[str, dict[str, Any]] = {}
    for sub in subscribers(runtime):
        mine = [(delivered, at) for (name, _), (_, delivered, at) in known.items() if name == sub.name]
        out[sub.name] = {"delivered": sum(d for d, _ in mine),
                         "updated_at": max((at for _, at in mine), default=None),
                         "behind": waiting_now[sub.name]}
    return out


async def drain(runtime: Runtime, limit: int = DEFAULT_BATCH) -> int:
    """Relay until no (subscriber, partition) has anything waiting (tests, the CLI; with several relays
    at once, a pair another relay holds is tried again); returns messages handed over by this one."""
    await prepare(runtime)
    total = 0
    backlogs = Backlogs()
    while True:
        moved, held = 0, False
        for group in backlogs.groups({p: subscribers(runtime) for p in partitions(runtime)}):
            counts = await step_many(runtime, group, limit)
            for pair, count in counts.items():
                backlogs.note(pair, count, limit)
            held = held or None in counts.values()
            moved += sum(count or 0 for count in counts.values())
        total += moved
        if moved == 0:
            if not held:
                return total
            await asyncio.sleep(0.05)  # another relay holds a batch: it may leave more after it
