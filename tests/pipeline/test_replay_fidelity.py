"""Replay equals live, point by point: held jobs, completion ids and order, completions made by a
person counted from where they were made, a busy database, and an engine's rank index."""

from __future__ import annotations

import sqlite3
import threading
import time
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from questline.kit import db
from questline.kit.clock import ManualClock
from questline.kit.runtime import Runtime
from questline.kit.settings import Settings
from questline.pipeline.replay import start_replay
from questline.pipeline.worker import drain
from questline.roles import build_scheduler
from questline.tenancy.schemas import Role
from tests.challenges.helpers import challenges, configure, event, history, idem
from tests.conftest import Factory, run_cli
from tests.factories import define, send
from tests.pipeline.helpers import settle
from tests.streaks.helpers import configure as streaks_configure
from tests.streaks.helpers import daily, streak


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


async def log_types(runtime: Runtime, app_id: str) -> list[str]:
    async with runtime.read_sessions() as session:
        rows = await session.execute(sa.text("SELECT type FROM events WHERE app_id = :a ORDER BY seq"), {"a": app_id})
        return list(rows.scalars())


async def test_scheduled_jobs_wait_until_the_replay_is_done(client: httpx.AsyncClient, factory: Factory,
                                                           runtime: Runtime, clock: ManualClock) -> None:
    keys = await factory.app()
    await streaks_configure(client, keys, streak={"daily": daily()})
    clock.set(at("2026-03-12T12:00:00Z"))
    await send(client, keys, *[event("ann", f"2026-03-{d}T08:00:00Z", "session.played") for d in (10, 11, 12)])
    await settle(runtime)
    # Two days later the streak is due to break; a replay starts before the job got to it.
    clock.set(at("2026-03-14T00:05:00Z"))
    await start_replay(runtime, keys.app_id)
    scheduler = build_scheduler(runtime)
    assert await scheduler.tick() == []  # every job waits: none reads half-rebuilt state
    assert "questline.streak.check" not in await log_types(runtime, keys.app_id)

    await drain(runtime)
    assert (await streak(client, keys, "ann"))["current"] == 3  # as live left it
    assert "streaks.check_breaks" in await scheduler.tick()
    await settle(runtime)
    assert (await streak(client, keys, "ann"))["current"] == 0


CLAIMED = {"name": "Coach-approved week", "category": "workout", "recurrence": "weekly",
           "completion_mode": "claim",
           "rewards": {"xp": {"track": "xp", "amount": 40}},
           "objectives": [{"type": "count", "event_type": "session.logged", "target": 2}]}
DAILY = {"name": "Show up", "category": "streak", "recurrence": "daily",
         "rewards": {"xp": {"track": "xp", "amount": 5}},
         "objectives": [{"type": "count", "event_type": "session.logged", "target": 1}]}
TWO_DONE = {"name": "Two done", "criteria": {"metric": "challenges.completed", "op": "gte", "value": 2}}


async def test_history_and_person_made_completions_replay_as_live(client: httpx.AsyncClient, factory: Factory,
                                                                  runtime: Runtime, clock: ManualClock,
                                                                  settings: Settings) -> None:
    keys = await factory.app()
    await configure(client, keys, {"coached": CLAIMED, "show-up": DAILY}, achievement={"two-done": TWO_DONE})
    clock.set(at("2026-03-11T20:00:00Z"))
    # Monday and Tuesday: two daily completions and the weekly claim challenge met.
    await send(client, keys, event("ana", "2026-03-09T08:00:00Z", "session.logged"),
               event("ana", "2026-03-10T08:00:00Z", "session.logged"))
    await settle(runtime)
    claim = await client.post("/v1/players/ana/challenges/coached/claim", headers=idem(keys.server),
                              json={"verification": {"coach": "c-1"}})
    assert claim.status_code in (200, 201), claim.text
    admin = await factory.admin(keys.org_id, Role.ADMIN)
    approved = await client.post(f"/v1/challenge-claims/{claim.json()['id']}/approve",
                                 headers=admin.headers(keys.app_id), json={"reason": "seen"})
    assert approved.status_code == 200, approved.text
    # Wednesday: one more daily completion; the achievement (two completions) unlocked on Tuesday.
    await send(client, keys, event("ana", "2026-03-11T08:00:00Z", "session.logged"))
    await settle(runtime)

    async def reads() -> dict[str, Any]:
        got = await client.get("/v1/players/ana/achievements", headers=keys.server)
        unlocked = {a["key"]: a["unlocked_at"] for a in got.json()["achievements"] if a["unlocked_at"]}
        return {"history": await history(client, keys, "ana"), "unlocked": unlocked,
                "coached": (await challenges(client, keys, "ana"))["coached"]}

    live = await reads()
    assert [(c["challenge"], c["source"]) for c in live["history"]] == [
        ("show-up", "auto"), ("coached", "claim"), ("show-up", "auto"), ("show-up", "auto")]
    assert at(live["unlocked"]["two-done"]) == at("2026-03-10T08:00:00Z")
    assert [(o["current"], o["met"]) for o in live["coached"]["objectives"]] == [(2, True)]

    result = await run_cli(["replay", "--app", keys.app_id], settings)
    assert result.exit_code == 0, result.output
    replayed = await reads()
    # Same ids, same newest-first order, the claim's week still reads 2 of 2, the unlock as live.
    assert replayed == live


async def test_replay_waits_out_a_busy_database(factory: Factory, runtime: Runtime, settings: Settings,
                                               client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch) -> None:
    if not settings.is_sqlite:
        pytest.skip("SQLite's single write lock")
    keys = await factory.app()
    await define(client, keys, {"stat": {"plays": {"event_type": "session.played"}}})
    await send(client, keys, *[event(f"p{i}", "2026-03-10T08:00:00Z", "session.played") for i in range(20)])
    await settle(runtime)
    # The replay's engine (made by the CLI, in this process) with a busy timeout of 1 s, not 30 s:
    # what is proved is waiting out a lock held past the timeout, whatever the timeout is.
    busy = 1.0
    monkeypatch.setattr(db, "SQLITE_BUSY_SECONDS", busy)
    # Another process holds the write lock past the busy timeout (three times over).
    path = settings.database_url.split(":///", 1)[1]
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    release = threading.Timer(3 * busy, holder.commit)
    release.start()
    started = time.monotonic()
    try:
        result = await run_cli(["replay", "--app", keys.app_id], settings)
    finally:
        release.join()
        holder.close()
    assert result.exit_code == 0, result.output
    assert "replayed 20 events" in result.output
    assert time.monotonic() - started > 2 * busy
