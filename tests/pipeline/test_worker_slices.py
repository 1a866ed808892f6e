"""The worker hands the event loop back while it handles a batch (pipeline/worker.py ``Slicer``):
in ``serve`` requests share its loop, and handling is synchronous work between awaits."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from questline.kit.runtime import Runtime
from questline.kit.settings import Settings
from questline.pipeline.batch import Batch, EventView, PlayerState
from questline.pipeline.states import processors_of
from questline.rules.service import RuleSet
from tests.conftest import Factory
from tests.pipeline.helpers import configure, send, settle


class _Witness:
    """A processor that notes, for each event it handles, how often another task has run so far."""

    name = "witness"

    def __init__(self, ticks: list[int]) -> None:
        self.ticks = ticks
        self.seen: list[int] = []

    def concerned(self, ruleset: RuleSet) -> bool:
        return True

    async def load(self, batch: Batch) -> None:
        return None

    def handle(self, batch: Batch, view: EventView, state: PlayerState) -> None:
        self.seen.append(self.ticks[0])

    async def flush(self, batch: Batch) -> None:
        return None

    async def reset(self, session: AsyncSession, app_id: str | None) -> None:
        return None


async def _handled_with(runtime: Runtime, slice_ms: float) -> list[int]:
    ticks = [0]
    witness = _Witness(ticks)
    processors_of(runtime).append(witness)
    runtime.settings = runtime.settings.model_copy(update={"worker_slice_ms": slice_ms})

    async def other_task() -> None:  # stands for the requests sharing the loop
        while True:
            ticks[0] += 1
            await asyncio.sleep(0)

    ticker = asyncio.create_task(other_task())
    try:
        await settle(runtime)
    finally:
        ticker.cancel()
        processors_of(runtime).remove(witness)
    return witness.seen


async def test_other_tasks_run_between_the_events_of_a_batch(
        client: httpx.AsyncClient, factory: Factory, runtime: Runtime) -> None:
    keys = await factory.app()
    await configure(client, keys)
    events = [{"id": f"s-{i}", "player_id": f"p{i % 4}", "type": "match.won", "data": {"score": 10}}
              for i in range(30)]
    assert (await send(client, keys, events)).status_code == 202

    seen = await _handled_with(runtime, 0.001)  # a 1 µs slice: the loop is handed back after every event
    assert len(seen) == 30
    assert len(set(seen)) == 30  # the other task ran between every two events of the batch

    stats = (await client.get("/v1/players/p0/stats", headers=keys.server)).json()
    assert stats["wins"]["all"] == 8  # and every event counted once


async def test_a_batch_within_its_slice_keeps_the_loop(
        client: httpx.AsyncClient, factory: Factory, runtime: Runtime, settings: Settings) -> None:
    if settings.event_log:
        pytest.skip("JetStream may deliver the ten events in more than one batch")
    keys = await factory.app()
    await configure(client, keys)
    events = [{"id": f"k-{i}", "player_id": "p1", "type": "match.won", "data": {"score": 10}} for i in range(10)]
    assert (await send(client, keys, events)).status_code == 202

    seen = await _handled_with(runtime, 10_000)  # ten seconds: no pause within a batch of ten events
    assert len(seen) == 10 and len(set(seen)) == 1


class _Unconcerned(_Witness):
    """A processor whose app has nothing for it: the worker neither loads nor calls nor flushes it."""

    name = "unconcerned"

    def __init__(self) -> None:
        super().__init__([0])
        self.calls: list[str] = []

    def concerned(self, ruleset: RuleSet) -> bool:
        return False

    async def load(self, batch: Batch) -> None:
        self.calls.append("load")

    def handle(self, batch: Batch, view: EventView, state: PlayerState) -> None:
        self.calls.append("handle")

    async def flush(self, batch: Batch) -> None:
        self.calls.append("flush")


async def test_a_processor_a_batch_does_not_concern_is_left_alone(
        client: httpx.AsyncClient, factory: Factory, runtime: Runtime) -> None:
    keys = await factory.app()
    await configure(client, keys)
    idle = _Unconcerned()
    processors_of(runtime).append(idle)
    try:
        events = [{"id": f"u-{i}", "player_id": "p1", "type": "match.won", "data": {"score": 10}} for i in range(3)]
        assert (await send(client, keys, events)).status_code == 202
        await settle(runtime)
    finally:
        processors_of(runtime).remove(idle)
    assert idle.calls == []
    stats = (await client.get("/v1/players/p1/stats", headers=keys.server)).json()
    assert stats["wins"]["all"] == 3  # the concerned processors did their work
