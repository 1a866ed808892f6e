"""Level curves, caps, combined levels, time zones, and trusted XP awards."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from questline.kit.runtime import Runtime
from questline.progression.schemas import CombinedLevelDef, Curve, TrackDef, level_info
from tests.conftest import Factory, problem
from tests.pipeline.helpers import configure, send, settle


def test_curves() -> None:
    assert Curve(type="quadratic", base=100).starts(5) == [0, 100, 500, 1400, 3000]
    assert Curve(type="geometric", base=100, factor=1.3).starts(4) == [0, 100, 230, 399]
    assert Curve(type="linear", base=50, step=10).starts(4) == [0, 50, 110, 180]
    assert Curve(type="table", thresholds=[10, 30]).starts(10) == [0, 10, 30]


def test_level_info_and_cap() -> None:
    track = TrackDef(curve=Curve(type="linear", base=100), max_level=3, level_names={3: "Max"})
    assert level_info(track, 0, 0).model_dump() | {} == {
        "level": 1, "name": None, "total_xp": 0, "xp_in_level": 0, "xp_for_next_level": 100,
        "xp_to_next_level": 100, "progress_percent": 0, "max_level": 3, "xp_today": 0}
    assert level_info(track, 150, 0).progress_percent == 50
    top = level_info(track, 10_000, 0)
    assert top.level == 3 and top.name == "Max" and top.xp_to_next_level is None and top.progress_percent == 100


def test_combined_level_needs_every_threshold() -> None:
    ladder = CombinedLevelDef.model_validate({"levels": [
        {"level": 1, "name": "Novice Explorer"},
        {"level": 2, "name": "Apprentice", "requires": {"xp": 100, "rp": 10}},
        {"level": 3, "name": "Legendary Creator", "requires": {"xp": 1000, "rp": 500}},
    ]})
    assert ladder.level_for({"xp": 5000, "rp": 5}) == 1
    assert ladder.level_for({"xp": 100, "rp": 10}) == 2
    assert ladder.level_for({"xp": 5000, "rp": 600}) == 3
    with pytest.raises(ValueError, match="numbered 1, 2, 3"):
        CombinedLevelDef.model_validate({"levels": [{"level": 2, "name": "x"}]})


async def test_daily_cap_follows_the_players_local_day(client: httpx.AsyncClient, factory: Factory,
                                                       runtime: Runtime) -> None:
    keys = await factory.app()
    await configure(client, keys)
    await client.put("/v1/players/kiri/account", headers=keys.server, json={"timezone": "Pacific/Kiritimati"})
    # 09:30 and 10:30 UTC are 23:30 and 00:30 in Kiritimati (UTC+14): two local days, two caps.
    events = [{"id": f"k{i}", "player_id": "kiri", "type": "match.won", "data": {"score": 1},
               "timestamp": f"2026-03-10T{9 if i < 3 else 10:02d}:30:00Z"} for i in range(6)]
    await send(client, keys, events)
    await settle(runtime)
    profile = (await client.get("/v1/players/kiri", headers=keys.server)).json()
    assert profile["levels"]["xp"]["total_xp"] == 300  # 150 capped on each local day
    stats = (await client.get("/v1/players/kiri/stats", headers=keys.server,
                              params={"at": "2026-03-10T09:45:00+00:00"})).json()
    assert stats["wins"]["day"] == 3 and stats["wins"]["all"] == 6


async def test_server_awards_xp_idempotently_and_clients_cannot(client: httpx.AsyncClient, factory: Factory,
                                                               runtime: Runtime) -> None:
    keys = await factory.app()
    await configure(client, keys)
    headers = {**keys.server, "Idempotency-Key": "award-1"}

    async def award() -> httpx.Response:
        return await client.post("/v1/players/bob/xp", headers=headers, json={"track": "xp", "amount": 550})

    pending = asyncio.create_task(award())
    while not pending.done():
        await settle(runtime)
        await asyncio.sleep(0)
    first = pending.result()
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["xp_earned"] == 550 and body["level"] == 3 and body["levels_gained"] == [2, 3]
    assert body["points_awarded"] == {"points": 400}
    replay = await award()
    assert replay.content == first.content and replay.headers["idempotent-replayed"] == "true"
    profile = (await client.get("/v1/players/bob", headers=keys.server)).json()
    assert profile["levels"]["xp"]["total_xp"] == 550 and profile["balances"]["points"]["balance"] == 400
    problem(await client.post("/v1/players/bob/xp", headers=keys.server, json={"amount": 5}), 400,
            "idempotency_key_required")
    problem(await client.post("/v1/players/bob/xp", headers={**keys.client, "Idempotency-Key": "c"},
                              json={"amount": 5}), 403, "caller_not_allowed")
    bob = await factory.player_token(keys, "bob")
    problem(await client.post("/v1/players/bob/xp", headers={**bob, "Idempotency-Key": "p"},
                              json={"amount": 5}), 403, "caller_not_allowed")
    problem(await client.post("/v1/players/bob/xp", headers={**keys.server, "Idempotency-Key": "u"},
                              json={"track": "mana", "amount": 5}), 422, "unknown_track")
