"""G-Keys through every transition, the same-brand exception and the highest-cooloff rule, with the
clock moved across cooloffs; energy packs across the streamer's local midnights and regeneration."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx

from questline.gkeys import service as gkeys
from questline.kit.clock import ManualClock
from questline.kit.db import unit_of_work
from questline.kit.runtime import Runtime
from tests.conftest import Factory, problem
from tests.market.helpers import Market, idem, verify


async def leave(market: Market, campaign_id: str, streamer_id: str) -> dict[str, object]:
    return dict(await market.ok("POST", f"/v1/campaigns/{campaign_id}/participants/{streamer_id}/leave",
                                headers=market.server))


async def join_as_server(market: Market, campaign_id: str, streamer_id: str) -> httpx.Response:
    return await market.client.post(f"/v1/campaigns/{campaign_id}/join", headers=idem(market.server),
                                    json={"streamer_id": streamer_id})


async def test_transitions_same_brand_exception_and_highest_cooloff(client: httpx.AsyncClient, factory: Factory,
                                                                    runtime: Runtime, clock: ManualClock) -> None:
    keys = await factory.app()
    market = Market(client, keys)
    acme, rival = await market.brand(), await market.brand()
    streamer = await market.streamer()

    # Never used: shown available, created on first use.
    assert (await market.key(streamer))["status"] == "available"
    summary = (await market.ok("GET", f"/v1/streamers/{streamer.id}/keys", headers=streamer.headers))["summary"]
    assert summary == {"total": 5, "available": 5, "locked": 0, "cooloff": 0}

    # available -> locked
    long_ = await market.campaign(acme, gkey_cooloff_hours=48)
    assert (await join_as_server(market, long_["id"], streamer.id)).status_code == 201
    key = await market.key(streamer)
    assert key["status"] == "locked" and key["locked_campaign_id"] == long_["id"]

    # locked -> cooloff (48h after acme's campaign)
    await leave(market, long_["id"], streamer.id)
    key = await market.key(streamer)
    assert key["status"] == "cooloff" and key["last_brand_id"] == acme.id and key["last_brand_cooloff_hours"] == 48
    assert key["cooloff_until"] == "2026-03-12T12:00:00Z" and key["usage_count"] == 1

    # In cooloff: another brand is refused; the same brand may use it at once (same-brand exception).
    other = await market.campaign(rival)
    problem(await join_as_server(market, other["id"], streamer.id), 409, "gkey_unavailable")
    short = await market.campaign(acme, gkey_cooloff_hours=24)
    clock.advance(hours=1)
    assert (await join_as_server(market, short["id"], streamer.id)).status_code == 201
    consumed = [m for m in await market.outbox("gkey.consumed") if m["data"]["campaign_id"] == short["id"]]
    assert consumed[0]["data"]["same_brand_exception"] is True

    # Released after a same-brand campaign: the higher of the two cooloffs (48h, not this campaign's 24h).
    await leave(market, short["id"], streamer.id)
    key = await market.key(streamer)
    assert key["last_brand_cooloff_hours"] == 48 and key["cooloff_until"] == "2026-03-12T13:00:00Z"
    debug = await market.ok("GET", f"/v1/streamers/{streamer.id}/keys/gaming/debug", headers=keys.server)
    assert debug["usable_now"] is False and debug["usable_by_brand"] == acme.id
    assert debug["cooloff_remaining"] == "2d 0h 0m" and "same-brand" in debug["explanation"]

    # cooloff -> available once the cooloff has run: usable at once, and the job announces it once.
    clock.set(datetime(2026, 3, 12, 13, 0, tzinfo=UTC))
    assert (await market.key(streamer))["status"] == "available"
    # (the job sweeps every app: other tests' keys may expire too, so this test counts its own events)
    for _ in range(2):
        async with unit_of_work(runtime.sessions) as session:
            await gkeys.expire_cooloffs(session, runtime.clock)
    expired = [m for m in await market.outbox("gkey.cooloff_expired") if m["data"]["streamer_id"] == streamer.id]
    assert len(expired) == 1

    # Another brand now: its cooloff replaces acme's (a lower one too).
    again = await market.campaign(rival, gkey_cooloff_hours=2, by_server=True)
    assert (await join_as_server(market, again["id"], streamer.id)).status_code == 201
    await leave(market, again["id"], streamer.id)
    key = await market.key(streamer)
    assert key["last_brand_id"] == rival.id and key["last_brand_cooloff_hours"] == 2 and key["usage_count"] == 3
    assert await verify(runtime, keys.app_id) == []


async def test_force_unlock_and_debug_explain_a_locked_key(client: httpx.AsyncClient, factory: Factory,
                                                           runtime: Runtime) -> None:
    keys = await factory.app()
    market = Market(client, keys)
    brand = await market.brand()
    streamer = await market.streamer()
    campaign = await market.campaign(brand)
    assert (await market.join(campaign["id"], streamer)).status_code == 201
    debug = await market.ok("GET", f"/v1/streamers/{streamer.id}/keys/gaming/debug", headers=keys.server)
    assert debug["stored_status"] == "locked" and campaign["id"] in debug["explanation"]
    # A streamer cannot unlock their own key; an admin tool only.
    problem(await client.post(f"/v1/streamers/{streamer.id}/keys/gaming/unlock", headers=streamer.headers), 403,
            "caller_not_allowed")
    admin = await factory.admin(keys.org_id)
    unlocked = await market.ok("POST", f"/v1/streamers/{streamer.id}/keys/gaming/unlock",
                               headers=admin.headers(keys.app_id))
    assert unlocked["previous_status"] == "locked" and unlocked["previous_campaign_id"] == campaign["id"]
    assert unlocked["key"]["status"] == "available"
    assert len(await market.outbox("gkey.force_unlocked")) == 1
    problem(await client.get(f"/v1/streamers/{streamer.id}/keys/darts", headers=keys.server), 404,
            "unknown_category")


async def test_energy_resets_at_the_streamers_local_midnight(client: httpx.AsyncClient, factory: Factory,
                                                             runtime: Runtime, clock: ManualClock) -> None:
    keys = await factory.app()
    market = Market(client, keys)
    await market.settings(energy_max=3)
    brand = await market.brand()
    # Kiritimati is UTC+14: 12:00 UTC on 10 March is 02:00 on 11 March there.
    streamer = await market.streamer(timezone="Pacific/Kiritimati")
    for category in ("gaming", "sports"):
        campaign = await market.campaign(brand, categories=[category])
        assert (await market.join(campaign["id"], streamer)).status_code == 201
    energy = await market.energy(streamer)
    assert (energy["current"], energy["daily_used"], energy["day"]) == (1, 2, "2026-03-11")
    assert energy["next_reset_at"] == "2026-03-11T10:00:00Z" and energy["timezone"] == "Pacific/Kiritimati"

    clock.set(datetime(2026, 3, 11, 9, 59, tzinfo=UTC))  # 23:59 local: not yet
    assert (await market.energy(streamer))["current"] == 1
    async with unit_of_work(runtime.sessions) as session:
        await gkeys.reset_due_energy(session, runtime.clock)
    assert not [m for m in await market.outbox("energy.reset") if m["data"]["streamer_id"] == streamer.id]

    clock.set(datetime(2026, 3, 11, 10, 0, tzinfo=UTC))  # local midnight; the job runs twice, resets once
    for _ in range(2):
        async with unit_of_work(runtime.sessions) as session:
            await gkeys.reset_due_energy(session, runtime.clock)
    energy = await market.energy(streamer)
    assert (energy["current"], energy["daily_used"], energy["day"]) == (3, 0, "2026-03-12")
    assert energy["next_reset_at"] == "2026-03-12T10:00:00Z"
    resets = [m for m in await market.outbox("energy.reset") if m["data"]["streamer_id"] == streamer.id]
    assert [m["data"]["day"] for m in resets] == ["2026-03-12"]


async def test_energy_regenerates_when_the_app_says_so(client: httpx.AsyncClient, factory: Factory,
                                                       runtime: Runtime, clock: ManualClock) -> None:
    keys = await factory.app()
    market = Market(client, keys)
    await market.settings(energy_max=2, energy_regen_minutes=30)
    brand = await market.brand()
    streamer = await market.streamer()
    campaigns = [await market.campaign(brand, categories=[c]) for c in ("gaming", "sports", "technology")]
    for campaign in campaigns[:2]:
        assert (await market.join(campaign["id"], streamer)).status_code == 201
    energy = await market.energy(streamer)
    assert energy["current"] == 0 and energy["next_regen_at"] == "2026-03-10T12:30:00Z"
    problem(await market.join(campaigns[2]["id"], streamer), 409, "no_energy")
    clock.advance(minutes=31)
    assert (await market.energy(streamer))["current"] == 1
    clock.advance(minutes=60)
    energy = await market.energy(streamer)
    assert energy["current"] == 2 and energy["next_regen_at"] is None  # full: no more regeneration
    assert (await join_as_server(market, campaigns[2]["id"], streamer.id)).status_code == 201
    assert (await market.energy(streamer))["current"] == 1
