"""The notification types of seeds 000 and 001 made from real domain events: a new competition, a streak at
risk (the reminder job, in the player's time zone, once per streak period), a paid withdrawal (the owner's
payout), a campaign joined and completed (the brand's). Each appears once in the inbox and is mailed once,
even when the relay hands its message over twice."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx

from questline.kit.clock import ManualClock
from questline.kit.db import unit_of_work
from questline.kit.runtime import Runtime
from questline.notifications import service as notifications
from tests.competitions.helpers import competition, create, join
from tests.conftest import AppKeys, Factory
from tests.finance.helpers import fund
from tests.market.helpers import Market, idem
from tests.notifications.helpers import channels_to, contacts, relay_outbox, settle_mail, smtp_server
from tests.streaks.helpers import configure, daily, event, play


async def inbox(client: httpx.AsyncClient, keys: AppKeys, player: str) -> list[dict[str, Any]]:
    resp = await client.get(f"/v1/players/{player}/notifications", headers=keys.server)
    assert resp.status_code == 200, resp.text
    items: list[dict[str, Any]] = resp.json()["items"]
    return items


async def mail_on(client: httpx.AsyncClient, keys: AppKeys, player: str, timezone: str = "UTC") -> None:
    await contacts(client, keys, player, timezone=timezone, email=f"{player}@example.com")
    resp = await client.put(f"/v1/players/{player}/notification-preferences", headers=keys.server,
                            json={"defaults": {"email": True}})
    assert resp.status_code == 200, resp.text


async def test_a_new_competition_is_announced_once_to_players_of_earlier_ones(
        client: httpx.AsyncClient, factory: Factory, runtime: Runtime, clock: ManualClock) -> None:
    keys = await factory.app()
    clock.set(datetime(2026, 3, 1, 9, 0, tzinfo=UTC))
    with smtp_server() as box:
        channels_to(runtime, smtp_port=box.port)
        for player in ("ann", "ben"):
            await mail_on(client, keys, player)
        first = await create(client, keys, competition("2026-03-02T10:00:00Z", "2026-03-02T12:00:00Z"))
        assert (await join(client, keys, first["id"], "ann")).status_code == 201
        second = await create(client, keys, competition("2026-03-09T10:00:00Z", "2026-03-09T12:00:00Z",
                                                        name="Summer cup"))
        await relay_outbox(runtime, keys)
        await relay_outbox(runtime, keys)  # the relay delivers at least once
        assert await notifications.process_due(runtime) == 1
        assert await notifications.process_due(runtime) == 0
        await settle_mail(box, 1)
        announced = [n for n in await inbox(client, keys, "ann") if n["type"] == "competition_announced"]
        assert [(n["title"], n["body"], n["data"]["competition_id"]) for n in announced] == [
            ("New competition: Summer cup", "Summer cup runs from 2026-03-09 10:00 to 2026-03-09 12:00 (UTC). "
             "Join in!", second["id"])]
        assert await inbox(client, keys, "ben") == []  # never took part: not announced to
        [mail] = box.received
        assert (mail["To"], mail["Subject"]) == ("ann@example.com", "New competition: Summer cup")
    for cid in (first["id"], second["id"]):  # leave nothing scheduled behind (PostgreSQL is shared)
        assert (await client.post(f"/v1/competitions/{cid}/cancel", headers=keys.server,
                                  json={"reason": "checked"})).status_code == 200


async def test_a_streak_at_risk_is_reminded_once_per_period_in_the_players_time_zone(
        client: httpx.AsyncClient, factory: Factory, runtime: Runtime, clock: ManualClock) -> None:
    keys = await factory.app()
    await configure(client, keys, streak={"daily": daily()})
    with smtp_server() as box:
        channels_to(runtime, smtp_port=box.port)
        await mail_on(client, keys, "lena", timezone="Europe/Berlin")  # UTC+1 in March
        clock.set(datetime(2026, 3, 10, 12, 0, tzinfo=UTC))
        await play(client, keys, runtime, event("lena", "2026-03-10T12:00:00Z"))  # local day 03-10 kept
        # Her streak breaks at the end of local 03-11 (2026-03-11T23:00Z) unless she plays on 03-11.

        async def remind(at: datetime) -> list[str]:
            clock.set(at)
            async with unit_of_work(runtime.sessions) as session:
                await notifications.remind(session, runtime, at)
            return [n["type"] for n in await inbox(client, keys, "lena")]

        assert await remind(datetime(2026, 3, 11, 18, 0, tzinfo=UTC)) == []  # five hours before: not yet
        assert await remind(datetime(2026, 3, 11, 19, 5, tzinfo=UTC)) == ["streak_at_risk"]
        assert await remind(datetime(2026, 3, 11, 19, 20, tzinfo=UTC)) == ["streak_at_risk"]  # once a period
        [entry] = await inbox(client, keys, "lena")
        assert entry["title"] == "Your Daily play streak is at risk"
        assert entry["body"] == ("Your Daily play streak of 1 ends at 2026-03-12 00:00 unless you play before "
                                 "then.")
        assert entry["data"]["period"] == "2026-03-11"
        assert await notifications.process_due(runtime) == 1
        assert await notifications.process_due(runtime) == 0
        await settle_mail(box, 1)
        assert [m["Subject"] for m in box.received] == ["Your Daily play streak is at risk"]
        # She plays on 03-11: the next period at stake is 03-12, reminded once on the evening of 03-12.
        await play(client, keys, runtime, event("lena", "2026-03-11T20:00:00Z"))
        assert await remind(datetime(2026, 3, 11, 19, 25, tzinfo=UTC)) == ["streak_at_risk"]
        assert await remind(datetime(2026, 3, 12, 19, 10, tzinfo=UTC)) == ["streak_at_risk", "streak_at_risk"]
        assert await remind(datetime(2026, 3, 12, 19, 15, tzinfo=UTC)) == ["streak_at_risk", "streak_at_risk"]
        assert [n["data"]["period"] for n in await inbox(client, keys, "lena")] == ["2026-03-12", "2026-03-11"]


async def test_a_paid_withdrawal_tells_its_owner_once(
        client: httpx.AsyncClient, factory: Factory, runtime: Runtime) -> None:
    keys = await factory.app()
    market = Market(client, keys)
    streamer = await market.streamer()
    method = await market.ok("POST", f"/v1/streamers/{streamer.id}/payment-methods", 201, headers=streamer.headers,
                             json={"kind": "bank_account", "holder": "Ann Example", "iban": "DE89370400440532013000"})
    await fund(runtime, keys.app_id, "streamer", streamer.id, 5_000)
    asked = await market.ok("POST", f"/v1/streamers/{streamer.id}/withdrawals", 201, headers=idem(streamer.headers),
                            json={"currency": "USD", "amount": 1_500, "payment_method_id": method["id"]})
    finance = (await factory.admin(keys.org_id)).headers(keys.app_id)
    if asked["status"] == "awaiting_approval":
        await market.ok("POST", f"/v1/finance/withdrawals/{asked['id']}/approve", headers=finance)
    await relay_outbox(runtime, keys)
    url = f"/v1/streamers/{streamer.id}/notifications"
    assert [n for n in (await market.ok("GET", url, headers=streamer.headers))["items"]
            if n["type"] == "payout"] == []  # not paid yet
    await market.ok("POST", f"/v1/finance/withdrawals/{asked['id']}/paid", headers=finance,
                    json={"reference": "SEPA-77"})
    await market.ok("POST", f"/v1/finance/withdrawals/{asked['id']}/paid", headers=finance,
                    json={"reference": "SEPA-77"})  # recorded again: no second message
    await relay_outbox(runtime, keys)
    await relay_outbox(runtime, keys)
    payouts = [n for n in (await market.ok("GET", url, headers=streamer.headers))["items"] if n["type"] == "payout"]
    assert [(n["title"], n["body"]) for n in payouts] == [(
        "Your payout of 1500 USD was paid", "Your withdrawal of 1500 USD (minor units) was paid (reference SEPA-77).")]
    assert payouts[0]["data"]["withdrawal_id"] == asked["id"]


async def test_the_brand_hears_of_a_join_and_of_its_campaign_completed_once(
        client: httpx.AsyncClient, factory: Factory, runtime: Runtime) -> None:
    keys = await factory.app()
    market = Market(client, keys)
    brand = await market.brand()
    campaign = await market.campaign(brand, title="Summer of Fizz")
    streamer = await market.streamer()
    assert (await market.join(campaign["id"], streamer)).status_code == 201
    await market.impressions(campaign["id"], [("a", streamer.id, 1_000)])
    await market.ok("POST", f"/v1/campaigns/{campaign['id']}/complete", headers=brand.headers)
    await relay_outbox(runtime, keys)
    await relay_outbox(runtime, keys)
    items = (await market.ok("GET", f"/v1/brands/{brand.id}/notifications", headers=brand.headers))["items"]
    assert [(n["type"], n["title"]) for n in items] == [
        ("campaign_completed", "Campaign completed: Summer of Fizz"),
        ("campaign_joined", f"{streamer.body['display_name']} joined Summer of Fizz"),
        ("campaign_approved", "Campaign approved")]
    assert items[0]["body"] == ("Your campaign Summer of Fizz is complete: 1000 impressions, 500 USD spent, "
                                "9500 USD returned to your balance.")
