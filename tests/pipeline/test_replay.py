"""Replay rebuilds exactly what live processing built, and re-posts and re-announces nothing."""

from __future__ import annotations

import random

import httpx
import sqlalchemy as sa

from questline.kit.runtime import Runtime
from questline.kit.settings import Settings
from questline.ledger import service as ledger
from tests.conftest import Factory, run_cli
from tests.pipeline.helpers import configure, send, settle
from tests.pipeline.snapshot import derived_state, expected_from_log

TIMEZONES = {"p0": "UTC", "p1": "Pacific/Kiritimati", "p2": "Etc/GMT+12", "p3": "America/Los_Angeles"}


def random_events(n: int, seed: int, players: int = 4) -> list[dict[str, object]]:
    rnd = random.Random(seed)
    return [{"id": f"r{seed}-{i}", "player_id": f"p{rnd.randrange(players)}", "type": "match.won",
             "data": {"score": rnd.randrange(0, 2000)},
             "timestamp": f"2026-03-{rnd.randrange(1, 9):02d}T{rnd.randrange(24):02d}:{rnd.randrange(60):02d}:00Z"}
            for i in range(n)]


async def outbox_count(runtime: Runtime, app_id: str) -> int:
    async with runtime.read_sessions() as session:
        return int((await session.execute(
            sa.text("SELECT count(*) FROM outbox WHERE app_id = :a"), {"a": app_id})).scalar_one())


async def test_replay_equals_live(client: httpx.AsyncClient, factory: Factory, runtime: Runtime,
                                  settings: Settings) -> None:
    keys = await factory.app()
    await configure(client, keys)
    for player, tz in TIMEZONES.items():
        await client.put(f"/v1/players/{player}/account", headers=keys.server, json={"timezone": tz})
    events = random_events(400, seed=7)
    for chunk in range(0, len(events), 100):
        assert (await send(client, keys, events[chunk:chunk + 100])).status_code == 202
        await settle(runtime)  # live processing in several batches, interleaved with ingest

    live = await derived_state(runtime, keys.app_id)
    expected = await expected_from_log(runtime, keys.app_id, TIMEZONES)
    tracks = {row[0]: row for row in live["player_tracks"] if row[1] == "xp"}
    assert {p: row[2] for p, row in tracks.items()} == expected["xp"]
    async with runtime.read_sessions() as session:
        balances = {p: (await ledger.player_balances(session, keys.app_id, p))["points"].balance
                    for p in expected["points"] if expected["points"][p]}
    assert balances == {p: v for p, v in expected["points"].items() if v}
    announced = await outbox_count(runtime, keys.app_id)

    result = await run_cli(["replay", "--app", keys.app_id], settings)
    assert result.exit_code == 0, result.output
    assert "replayed 400 events" in result.output

    assert await derived_state(runtime, keys.app_id) == live
    async with runtime.read_sessions() as session:
        assert await ledger.verify(session, keys.app_id) == []
        after = {p: (await ledger.player_balances(session, keys.app_id, p))["points"].balance for p in balances}
    assert after == balances
    assert await outbox_count(runtime, keys.app_id) == announced


async def test_replay_of_one_app_leaves_others_alone(client: httpx.AsyncClient, factory: Factory,
                                                     runtime: Runtime, settings: Settings) -> None:
    a, b = await factory.app(), await factory.app()
    for keys in (a, b):
        await configure(client, keys)
        await send(client, keys, random_events(30, seed=1))
    await settle(runtime)
    before_b = await derived_state(runtime, b.app_id)
    assert (await run_cli(["replay", "--app", a.app_id], settings)).exit_code == 0
    assert await derived_state(runtime, b.app_id) == before_b
