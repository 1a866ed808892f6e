"""Backfill beside a worker batch: it never writes progress from state a batch has since replaced.

Backfill writes derived state (progress, unlocks) outside a worker batch. It reads a page of
players' state processor by processor (streaks before achievements), so on PostgreSQL a batch
that commits between those reads used to leave it comparing an old streak with new progress and
writing the old value back: a player's "3-day streak" progress stuck at 1 while the streak was
at 2 (the replay test beside a running engine caught it once in CI). Backfill now takes the
players' partition locks, as a batch does, before it reads.

The test stops the backfill between the two reads (a pass-through processor in front of the
achievements processor waits there), runs a worker batch of the same partition meanwhile, and
then checks that progress agrees with the streak. SQLite has one writer (``BEGIN IMMEDIATE``), so
the interleaving cannot happen there; the test is for PostgreSQL.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from questline.achievements.processor import BACKFILL_EVENT, AchievementsProcessor
from questline.achievements.tasks import run_backfill
from questline.kit.runtime import Runtime
from questline.kit.settings import Settings
from questline.pipeline.batch import Batch, EventView, PlayerState
from questline.pipeline.models import partition_of
from questline.pipeline.states import processors_of
from questline.pipeline.worker import process_batch
from questline.rules.service import RuleSet
from tests.conftest import Factory
from tests.pipeline.helpers import settle
from tests.streaks.helpers import configure, event, play, send, streak

ON_FIRE = {"name": "On Fire", "criteria": {"metric": "streak.daily.current", "op": "gte", "value": 3}}


class PauseBeforeAchievements:
    """Lets a backfill's load stop after the earlier processors have read their state."""

    name = "pause"

    def __init__(self) -> None:
        self.reached = asyncio.Event()
        self.go_on = asyncio.Event()

    def concerned(self, ruleset: RuleSet) -> bool:
        return True

    async def load(self, batch: Batch) -> None:
        if any(view.record.type == BACKFILL_EVENT for view in batch.views):
            self.reached.set()
            await self.go_on.wait()

    def handle(self, batch: Batch, view: EventView, state: PlayerState) -> None:
        return None

    async def flush(self, batch: Batch) -> None:
        return None

    async def reset(self, session: AsyncSession, app_id: str | None) -> None:
        return None


async def on_fire(client: httpx.AsyncClient, headers: dict[str, str], player: str) -> dict[str, Any]:
    resp = await client.get(f"/v1/players/{player}/achievements", headers=headers)
    assert resp.status_code == 200, resp.text
    found: dict[str, Any] = next(a for a in resp.json()["achievements"] if a["key"] == "on-fire")
    return found


async def test_a_batch_between_backfill_reads_leaves_progress_equal_to_the_streak(
        client: httpx.AsyncClient, factory: Factory, runtime: Runtime, settings: Settings) -> None:
    if settings.is_sqlite:
        pytest.skip("SQLite has one writer: a batch cannot commit inside a backfill's transaction")
    keys = await factory.app()
    await configure(client, keys, streak={"daily": {"event_types": ["session.played"], "cadence": "daily"}},
                    achievement={"on-fire": ON_FIRE})
    await play(client, keys, runtime, event("kim", "2026-03-10T08:00:00Z"))
    assert (await on_fire(client, keys.server, "kim"))["progress"]["current"] == 1
    await send(client, keys, event("kim", "2026-03-11T08:00:00Z"))  # day two, not processed yet

    steps = processors_of(runtime)
    pause = PauseBeforeAchievements()
    steps.insert(next(i for i, s in enumerate(steps) if isinstance(s, AchievementsProcessor)), pause)
    try:
        backfill = asyncio.create_task(run_backfill(runtime, keys.app_id, ["on-fire"]))
        await asyncio.wait_for(pause.reached.wait(), 30)
        # The partition's worker batch runs while the backfill holds the streak it read.
        partition = partition_of(keys.app_id, "kim", settings.pipeline_partitions)
        await asyncio.wait_for(process_batch(runtime, None, partition), 30)
        pause.go_on.set()
        await asyncio.wait_for(backfill, 30)
    finally:
        steps.remove(pause)
        pause.go_on.set()
    await settle(runtime)  # whatever the batch could not do while the backfill held the partition

    assert (await streak(client, keys, "kim"))["current"] == 2
    assert (await on_fire(client, keys.server, "kim"))["progress"]["current"] == 2
