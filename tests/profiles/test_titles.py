"""The profile lists the titles a player earned, wherever they came from: an unlocked achievement,
a claimed battle pass tier, a referral milestone."""

from __future__ import annotations

from datetime import timedelta

import httpx

from questline.kit.clock import ManualClock
from questline.kit.runtime import Runtime
from tests.battlepass.helpers import SEASON, claim, configure, idem, won
from tests.conftest import START, Factory
from tests.pipeline.helpers import send, settle
from tests.referrals.helpers import code_of, track


async def titles(client: httpx.AsyncClient, headers: dict[str, str], player: str) -> list[tuple[str, str, str]]:
    resp = await client.get(f"/v1/players/{player}", headers=headers)
    assert resp.status_code == 200, resp.text
    return [(t["title"], t["source"], t["reference"]) for t in resp.json()["titles"]]


async def test_titles_from_achievements_pass_tiers_and_referral_milestones(client: httpx.AsyncClient,
                                                                          factory: Factory,
                                                                          runtime: Runtime, clock: ManualClock) -> None:
    keys = await factory.app()
    season = {**SEASON, "free": {**SEASON["free"], "1": {"title": "Summer Rookie", "badge": "season_participant"}}}
    await configure(client, keys, season=season)
    resp = await client.put("/v1/definitions/achievement/beta", headers=keys.server,
                            json={"name": "Beta tester", "unlocks": {"title": "Beta Hero"}})
    assert resp.status_code == 201, resp.text
    program = {"currency": "points", "rewards": {},
               "milestones": [{"tier": "bronze", "name": "Bronze", "referrals": 1, "title": "Recruiter"}]}
    resp = await client.put("/v1/definitions/referral_program/default", headers=keys.server, json=program)
    assert resp.status_code == 201, resp.text

    assert (await client.put("/v1/players/alice/account", headers=keys.server, json={})).status_code == 200
    assert await titles(client, keys.server, "alice") == []
    # A pass tier with a title (its badge achievement has none), a granted achievement with one, a milestone.
    await send(client, keys, [won(1, score=1200)])
    await settle(runtime)
    assert (await claim(client, keys.server, 1)).status_code == 201
    clock.set(START + timedelta(minutes=1))
    resp = await client.post("/v1/players/alice/achievements/beta/grant", headers=idem(keys.server), json={})
    assert resp.status_code == 201, resp.text
    clock.set(START + timedelta(minutes=2))
    code = await code_of(client, keys, "alice")
    assert (await track(client, keys, code, "friend")).status_code == 201

    assert await titles(client, keys.server, "alice") == [
        ("Summer Rookie", "battle_pass", "s1:free:1"), ("Beta Hero", "achievement", "beta"),
        ("Recruiter", "referral_milestone", "bronze")]
    # The player reads their own; nobody else's titles leak into it.
    token = await factory.player_token(keys, "alice")
    assert len(await titles(client, token, "alice")) == 3
    assert await titles(client, keys.server, "friend") == []
