"""XP and level distribution of a track (GET /v1/progression/tracks/{track}/distribution) and its charts
in the console, on SQLite and PostgreSQL: the counts are the players created at each level."""

from __future__ import annotations

import asyncio
import re
import uuid

import httpx

from questline.kit.runtime import Runtime
from questline.tenancy.schemas import Role
from tests.conftest import AppKeys, Factory, problem
from tests.console.helpers import Console
from tests.pipeline.helpers import settle

# Levels 2 and 3 start at 100 and 300 total XP.
TRACK = {"name": "Experience", "curve": {"type": "table", "thresholds": [100, 300]}, "level_names": {"1": "Rookie"}}


async def award(client: httpx.AsyncClient, runtime: Runtime, keys: AppKeys, player: str, amount: int) -> None:
    """An award answers once the worker has processed it (or after 10 s): the test is the worker."""
    pending = asyncio.create_task(client.post(
        f"/v1/players/{player}/xp", headers={**keys.server, "Idempotency-Key": uuid.uuid4().hex},
        json={"track": "xp", "amount": amount, "reason": "test"}))
    while not pending.done():
        await settle(runtime)
        await asyncio.sleep(0)
    resp = pending.result()
    assert resp.status_code == 200, resp.text


async def test_players_per_level_and_xp_bucket(client: httpx.AsyncClient, factory: Factory,
                                               runtime: Runtime) -> None:
    keys, other = await factory.app(), await factory.app("other")
    for app in (keys, other):
        assert (await client.put("/v1/definitions/xp_track/xp", headers=app.server, json=TRACK)).is_success
    empty = (await client.get("/v1/progression/tracks/xp/distribution", headers=keys.server)).json()
    assert empty == {"track": "xp", "players": 0, "levels": [], "xp": []}

    # ana 50 (level 1), bo 150 and cy 200+50 (level 2), di 400 (level 3); another app's player never counts.
    for player, amount in (("ana", 50), ("bo", 150), ("cy", 200), ("cy", 50), ("di", 400)):
        await award(client, runtime, keys, player, amount)
    await award(client, runtime, other, "zed", 5000)
    await settle(runtime)

    spread = (await client.get("/v1/progression/tracks/xp/distribution", headers=keys.server,
                               params={"buckets": 4})).json()
    assert spread["players"] == 4
    assert [(lv["level"], lv["name"], lv["players"]) for lv in spread["levels"]] == [
        (1, "Rookie", 1), (2, None, 2), (3, None, 1)]
    # width = 400 // 4 + 1 = 101: 0-100 ana, 101-201 bo, 202-302 cy, 303-403 di
    assert [(b["from_xp"], b["to_xp"], b["players"]) for b in spread["xp"]] == [
        (0, 100, 1), (101, 201, 1), (202, 302, 1), (303, 403, 1)]
    one = (await client.get("/v1/progression/tracks/xp/distribution", headers=keys.server,
                            params={"buckets": 1})).json()
    assert one["xp"] == [{"from_xp": 0, "to_xp": 400, "players": 4}]

    problem(await client.get("/v1/progression/tracks/rp/distribution", headers=keys.server), 404,
            "definition_not_found")
    problem(await client.get("/v1/progression/tracks/xp/distribution", headers=keys.server,
                             params={"buckets": 0}), 422)
    assert (await client.get("/v1/progression/tracks/xp/distribution", headers=keys.client)).status_code in (401, 403)
    ana = await factory.player_token(keys, "ana")
    assert (await client.get("/v1/progression/tracks/xp/distribution", headers=ana)).status_code in (401, 403)

    console = await Console(client, keys.app_id).sign_in(await factory.admin(keys.org_id, Role.VIEWER))
    page = await console.get("/progression", track="xp")
    assert page.status_code == 200
    levels = re.search(r'<figure id="level-chart">(.*?)</figure>', page.text, re.S)
    assert levels and levels.group(1).count("<rect") == 3 and "L2: 2 players</title>" in levels.group(1)
    xp = re.search(r'<figure id="xp-chart">(.*?)</figure>', page.text, re.S)
    assert xp and xp.group(1).count("<rect") == 12
    chooser = await console.get("/progression")
    assert chooser.status_code == 200 and "xp (Experience)" in chooser.text
    missing = await console.get("/progression", track="nope")
    assert missing.status_code == 200 and "definition_not_found" in missing.text
