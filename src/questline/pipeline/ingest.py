"""Ingest: authenticate (done by the route), validate, dedupe by event id, append to the log.

Requests are validated here and appended by the group committer (``committer.py``): one write
for the concurrent requests of a few milliseconds, each answered once its events are durable.
Ingest neither creates players nor touches derived state: the worker does both.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

import orjson
from pydantic import TypeAdapter, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from questline.kit.db import after_commit
from questline.kit.errors import Unprocessable
from questline.kit.pagination import Page, PageParams, build_page
from questline.kit.runtime import Runtime
from questline.pipeline import repository as repo
from questline.pipeline.committer import GroupCommitter, Key
from questline.pipeline.models import LIVE, EventRecord, partition_of
from questline.pipeline.schemas import (
    MAX_BATCH,
    RESERVED_PREFIX,
    Cohort,
    Effect,
    EventIn,
    IngestResult,
    Rejected,
    Retention,
)
from questline.pipeline.stream import StreamLog, stream_log
from questline.players import service as players
from questline.tenancy import service as tenancy
from questline.tenancy.auth import CLIENT, PLAYER, Caller

_EVENT = TypeAdapter(EventIn)
SERVER_MAX_FUTURE = timedelta(days=1)


@dataclass
class Signals:
    """Wake-ups between ingest and the in-process worker."""

    new_events: asyncio.Event = field(default_factory=asyncio.Event)
    progress: asyncio.Event = field(default_factory=asyncio.Event)

    def announce_progress(self) -> None:
        self.progress.set()
        self.progress = asyncio.Event()


def signals(runtime: Runtime) -> Signals:
    found = runtime.extensions.get("events.signals")
    if found is None:
        found = runtime.extensions["events.signals"] = Signals()
    assert isinstance(found, Signals)
    return found


def split_body(body: Any) -> list[Any]:
    """One event, a list of events, or ``{"events": [...]}``."""
    if isinstance(body, dict) and "events" in body and len(body) == 1:
        body = body["events"]
    items = body if isinstance(body, list) else [body]
    if not items:
        raise Unprocessable("send at least one event", code="empty_batch")
    if len(items) > MAX_BATCH:
        raise Unprocessable(f"a batch holds at most {MAX_BATCH} events; got {len(items)}", code="batch_too_large")
    return items


def committer(runtime: Runtime) -> GroupCommitter:
    """The runtime's group committer (made on first use; closed with the runtime)."""
    found = runtime.extensions.get("pipeline.committer")
    if found is None:
        wake = signals(runtime).new_events
        found = runtime.extensions["pipeline.committer"] = GroupCommitter(runtime, on_commit=wake.set)
        runtime.on_close(found.close)
    assert isinstance(found, GroupCommitter)
    return found


async def _verdict(runtime: Runtime, caller: Caller, allowed_types: frozenset[str],
                   event: EventIn) -> tuple[str, str] | None:
    """Why an event is refused (code, reason), or None to accept it."""
    settings = runtime.settings
    now = runtime.clock.now()
    if event.type.startswith(RESERVED_PREFIX):
        return "reserved_type", f"event types starting with {RESERVED_PREFIX!r} are the engine's own"
    if caller.kind is CLIENT:
        # A publishable key is public: it cannot vouch for who a player is.
        return "player_token_required", (
            "events from a game client name their player with that player's token (Authorization: Bearer "
            "<player token>, minted by your server), not with the publishable key")
    if caller.kind is not PLAYER:
        if event.timestamp is not None and event.timestamp > now + SERVER_MAX_FUTURE:
            return "timestamp_out_of_window", "timestamp is more than a day in the future"
        return None
    if event.player_id != caller.player_id:
        return "player_mismatch", "a player token may send events only for its own player"
    if event.type not in allowed_types:
        return "type_not_allowed", f"event type {event.type!r} is not open to game clients; send it from your server"
    size = len(orjson.dumps(event.data))
    if size > settings.client_event_max_bytes:
        limit = settings.client_event_max_bytes
        return "payload_too_large", f"data is {size} bytes; client events are limited to {limit}"
    if event.timestamp is not None:
        earliest = now - timedelta(seconds=settings.client_event_max_past_seconds)
        latest = now + timedelta(seconds=settings.client_event_max_future_seconds)
        if not earliest <= event.timestamp <= latest:
            return "timestamp_out_of_window", (
                f"client event timestamps must fall between {earliest.isoformat()} and {latest.isoformat()}"
            )
    verdict = await runtime.limiter.hit(settings.client_event_rate_per_player, "events", caller.app, event.player_id)
    if not verdict.allowed:
        return "rate_limited", f"too many events for this player; retry in {verdict.retry_after}s"
    return None


@dataclass
class Ingested:
    result: IngestResult
    seqs: list[int]
    event_ids: list[str] = field(default_factory=list)  # on JetStream: what ``wait_for_effects`` waits for


async def ingest(runtime: Runtime, caller: Caller, body: Any, *, source: str | None = None,
                 want_seqs: bool = False) -> Ingested:
    """Append the acceptable events to the log; report each refused one with its reason.

    Returns once the new events are durable. ``want_seqs`` also looks up the log positions of
    duplicates (for ``?wait=true``, which waits for the worker to reach every one of them).
    """
    items = split_body(body)
    allowed: frozenset[str] = frozenset()
    if caller.kind is PLAYER:  # untrusted callers are limited to client-allowed types
        async with runtime.read_sessions() as session:  # no query once the app is cached
            allowed = (await tenancy.app_settings(session, caller.app)).client_event_types
    now = runtime.clock.now()
    accepted: list[EventIn] = []
    rejected: list[Rejected] = []
    seen: set[str] = set()
    duplicates_in_request: list[str] = []
    for index, raw in enumerate(items):
        raw_id = raw.get("id") if isinstance(raw, dict) and isinstance(raw.get("id"), str) else None
        try:
            event = _EVENT.validate_python(raw)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "event"
            rejected.append(Rejected(index=index, id=raw_id, code="invalid_event", reason=f"{where}: {first['msg']}"))
            continue
        refusal = await _verdict(runtime, caller, allowed, event)
        if refusal is not None:
            rejected.append(Rejected(index=index, id=event.id, code=refusal[0], reason=refusal[1]))
            continue
        if event.id in seen:
            duplicates_in_request.append(event.id)
            continue
        seen.add(event.id)
        accepted.append(event)

    if not accepted and not duplicates_in_request and rejected:
        if len(items) == 1:
            only = rejected[0]
            raise Unprocessable(only.reason, code=only.code, extra={"rejected": [only.model_dump()]})
        raise Unprocessable(f"all {len(rejected)} events were rejected", code="events_rejected",
                            extra={"rejected": [r.model_dump() for r in rejected]})

    kind = source or caller.kind.value
    app_id = caller.app
    rows = [{"app_id": app_id, "event_id": e.id, "player_id": e.player_id, "type": e.type, "data": e.data,
             "occurred_at": e.timestamp or now, "received_at": now, "source": kind, "pending": LIVE}
            for e in accepted]
    log = stream_log(runtime)
    new = await (committer(runtime).append(rows) if log is None else _publish(runtime, log, app_id, rows))
    runtime.metrics.events_ingested.inc(len(new))
    fresh = [e.id for e in accepted if (app_id, e.id) in new]
    dupes = [e.id for e in accepted if (app_id, e.id) not in new] + duplicates_in_request
    if log is not None:  # log positions are known once a worker applied them: wait by id
        return Ingested(IngestResult(accepted=fresh, duplicates=dupes, rejected=rejected), seqs=[],
                        event_ids=fresh + dupes)
    seqs = set(new.values())
    if want_seqs and dupes:
        async with runtime.read_sessions() as session:
            seqs |= set((await repo.seqs_of(session, app_id, dupes)).values())
    return Ingested(IngestResult(accepted=fresh, duplicates=dupes, rejected=rejected), seqs=sorted(seqs))


async def _publish(runtime: Runtime, log: StreamLog, app_id: str, rows: list[dict[str, Any]]) -> dict[Key, int]:
    """Ingest on JetStream: ids the database log already holds are duplicates; the rest are
    published (JetStream dedupes a retried publish by ``Nats-Msg-Id``) and answered once acked.
    Returns (app, event id) -> 0 for the new ones (their log position comes when applied)."""
    async with runtime.read_sessions() as session:
        known = await repo.seqs_of(session, app_id, [row["event_id"] for row in rows])
    rows = [row for row in rows if row["event_id"] not in known]
    for row in rows:
        row["partition"] = partition_of(app_id, row["player_id"], runtime.settings.pipeline_partitions)
    acked = await log.publish(rows)
    if acked:
        signals(runtime).new_events.set()
    return {key: 0 for key, is_new in acked.items() if is_new}


async def wait_for_effects(runtime: Runtime, app_id: str, seqs: Sequence[int],
                           within: float = 10.0, event_ids: Sequence[str] = ()) -> tuple[bool, list[Effect]]:
    """After commit: wait until the worker has processed these events; return what they caused.

    ``event_ids`` (the JetStream log): events whose log position is not known yet; they count as
    pending until a worker has applied them."""
    sig = signals(runtime)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    seqs = list(seqs)
    unplaced = list(event_ids)
    while True:
        progress = sig.progress
        async with runtime.read_sessions() as session:
            if unplaced:
                placed = await repo.seqs_of(session, app_id, unplaced)
                seqs += placed.values()
                unplaced = [e for e in unplaced if e not in placed]
            pending = await repo.count_pending(session, seqs) + len(unplaced)
            if pending == 0:
                rows = await repo.effects_of(session, app_id, seqs)
                return True, [Effect(event_id=event_id, type=msg.type, player_id=msg.player_id, data=msg.payload)
                              for msg, event_id in rows]
        remaining = deadline - loop.time()
        if remaining <= 0:
            return False, []
        # Woken by the in-process worker; polling covers a worker in another process.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(progress.wait(), timeout=min(0.05, remaining))


async def player_events(session: AsyncSession, app_id: str, player_id: str, page: PageParams) -> Page[EventRecord]:
    rows = await repo.page_of_player(session, app_id, player_id, page.after_int(), page.limit)
    return build_page(list(rows), page.limit, lambda e: [e.seq])


async def outbox(session: AsyncSession, app_id: str, page: PageParams) -> Page[dict[str, Any]]:
    rows = list(await repo.outbox_page(session, app_id, page.after_int(), page.limit))
    built = build_page(rows, page.limit, lambda m: [m.seq])
    items = [{"seq": m.seq, "type": m.type, "player_id": m.player_id, "data": m.payload,
              "created_at": m.created_at.isoformat()} for m in built.items]
    return Page[dict[str, Any]](items=items, next_cursor=built.next_cursor)


class InternalEvent(NamedTuple):
    """An engine-made event (trusted; of a reserved type) to append to the log."""

    app_id: str
    player_id: str
    event_id: str
    type: str
    data: dict[str, Any]


async def append_internal(session: AsyncSession, runtime: Runtime, *, app_id: str, player_id: str, event_id: str,
                          type_: str, data: dict[str, Any]) -> list[int]:
    """Append an engine-made event (trusted; reserved type); returns its log position."""
    new = await _append_internal(session, runtime, [InternalEvent(app_id, player_id, event_id, type_, data)])
    if new:
        return list(new.values())
    return list((await repo.seqs_of(session, app_id, [event_id])).values())


async def append_internal_many(session: AsyncSession, runtime: Runtime, events: Sequence[InternalEvent]) -> int:
    """Append engine-made events together (a scheduled job's): one players check per app and one
    insert, where one at a time cost three statements each. An id the app's log already has is
    skipped; returns how many were new."""
    return len(await _append_internal(session, runtime, events))


async def _append_internal(session: AsyncSession, runtime: Runtime,
                           events: Sequence[InternalEvent]) -> dict[tuple[str, str], int]:
    by_app: dict[str, set[str]] = {}
    for event in events:
        by_app.setdefault(event.app_id, set()).add(event.player_id)
    for app_id, player_ids in by_app.items():
        await players.ensure_players(session, runtime.clock, app_id, player_ids)
    now = runtime.clock.now()
    rows = [{"app_id": e.app_id, "event_id": e.event_id, "player_id": e.player_id, "type": e.type, "data": e.data,
             "occurred_at": now, "received_at": now, "source": "internal", "pending": LIVE} for e in events]
    new = await repo.append(session, rows, partitions=runtime.settings.pipeline_partitions)
    if new:
        after_commit(session, signals(runtime).new_events.set)
    return new


async def retention(session: AsyncSession, app_id: str, now: datetime, weeks: int) -> Retention:
    """Cohorts of the last ``weeks`` UTC weeks (this one included): who came back in each later week."""
    current = (int(now.timestamp()) - repo.WEEK_ORIGIN) // repo.WEEK
    first_week = current - weeks + 1
    since = datetime.fromtimestamp(repo.WEEK_ORIGIN + first_week * repo.WEEK, UTC)
    counts: dict[int, dict[int, int]] = {}
    for cohort, week, seen in await repo.weekly_cohorts(session, app_id, first_week, since):
        counts.setdefault(cohort, {})[week] = seen
    cohorts = []
    for cohort in sorted(counts):
        size = counts[cohort].get(cohort, 0)
        active = [counts[cohort].get(week, 0) for week in range(cohort, current + 1)]
        start = datetime.fromtimestamp(repo.WEEK_ORIGIN + cohort * repo.WEEK, UTC)
        cohorts.append(Cohort(week=start.date().isoformat(), players=size, active=active,
                              percent=[round(n * 100 / size, 1) if size else 0.0 for n in active]))
    return Retention(weeks=weeks, cohorts=cohorts)
