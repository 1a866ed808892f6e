"""A join that presents a link's click id feeds the referral program like any signup, its fraud rules
included; the analytics page shows clicks, visitors, joins and conversion by member and day, as CSV too."""

from __future__ import annotations

import csv
import io

import httpx
from fastapi import FastAPI

from tests.communities.helpers import balance, create, join, points
from tests.conftest import Factory, problem
from tests.links.helpers import analytics, click, click_id, visitor

PROGRAM = {"currency": "points", "rewards": {"signed_up": {"referrer": 500, "referee": 200}}, "milestones": []}


async def test_attributed_joins_feed_the_referral_program_and_its_fraud_rules(
        client: httpx.AsyncClient, engine: FastAPI, factory: Factory) -> None:
    keys = await factory.app()
    await points(client, keys)
    resp = await client.put("/v1/definitions/referral_program/default", headers=keys.server, json=PROGRAM)
    assert resp.status_code in (200, 201), resp.text
    await create(client, keys.server, redirect_url="https://play.example.com/join")
    lead = (await join(client, keys.server, "crypto-warriors", player_id="lead")).json()
    # The server recorded the address Lead plays from with his referral code.
    resp = await client.post("/v1/players/lead/referral-code", headers=keys.server, json={"ip": "203.0.113.9"})
    assert resp.status_code == 201, resp.text
    link = f"/c/{keys.app_id}/crypto-warriors/{lead['member_code']}"

    # Maya clicks Lead's link and joins through the server key, which passes her address and device.
    async with visitor(engine, "198.51.100.7") as maya_browser:
        maya_click = click_id(await click(maya_browser, link))
    resp = await join(client, keys.server, "crypto-warriors", player_id="maya", click_id=maya_click,
                      ip="198.51.100.7", device_fingerprint="fp-maya", email="maya@example.com")
    assert resp.status_code == 201 and resp.json()["click"] == "attributed" and resp.json()["referred_by"] == "lead"
    assert await balance(client, keys, "lead") == 500 and await balance(client, keys, "maya") == 200
    summary = (await client.get("/v1/players/lead/referrals", headers=keys.server)).json()
    assert summary["counted"] == 1 and summary["by_status"]["signed_up"] == 1

    # Sean joins with his own token from Lead's address: the fraud rules hold it for review, unpaid.
    sean = await factory.player_token(keys, "sean")
    async with visitor(engine, "203.0.113.9") as sean_browser:
        sean_click = click_id(await click(sean_browser, link))
        resp = await sean_browser.post("/v1/communities/crypto-warriors/members", headers=sean,
                                       json={"click_id": sean_click})
    assert resp.status_code == 201 and resp.json()["click"] == "attributed"
    review = (await client.get("/v1/referrals/review", headers=keys.server)).json()["items"]
    assert [(r["referee_id"], r["fraud_reasons"]) for r in review] == [("sean", ["same_ip_as_referrer"])]
    assert review[0]["attribution"]["source"] == "community_link"
    assert await balance(client, keys, "lead") == 500 and await balance(client, keys, "sean") == 0
    # A device seen before is flagged too.
    async with visitor(engine, "192.0.2.44") as tom_browser:
        tom_click = click_id(await click(tom_browser, link))
    await join(client, keys.server, "crypto-warriors", player_id="tom", click_id=tom_click, ip="192.0.2.44",
               device_fingerprint="fp-maya")
    review = (await client.get("/v1/referrals/review", headers=keys.server)).json()["items"]
    assert ("tom", ["device_reused"]) in [(r["referee_id"], r["fraud_reasons"]) for r in review]
    assert await balance(client, keys, "lead") == 500

    # A player referred once before (elsewhere) still joins; the referral program counts them once.
    await client.post("/v1/communities", headers=keys.server,
                      json={"name": "Second", "slug": "second-guild", "redirect_url": "https://play.example.com/2"})
    lead2 = (await join(client, keys.server, "second-guild", player_id="lead")).json()
    async with visitor(engine, "192.0.2.46") as maya_again:
        maya_second = click_id(await click(maya_again, f"/c/{keys.app_id}/second-guild/{lead2['member_code']}"))
    resp = await join(client, keys.server, "second-guild", player_id="maya", click_id=maya_second)
    assert resp.status_code == 201 and resp.json()["click"] == "attributed"
    assert await balance(client, keys, "maya") == 200 and await balance(client, keys, "lead") == 500

    # Only the server key gives a joining player's address, device and e-mail.
    ann = await factory.player_token(keys, "ann")
    problem(await join(client, ann, "crypto-warriors", ip="198.51.100.1"), 403, "server_key_required")
    problem(await join(client, keys.server, "crypto-warriors", player_id="ann", ip="not-an-ip"), 422)


async def test_link_analytics_by_member_and_day_and_as_csv(client: httpx.AsyncClient, engine: FastAPI,
                                                           factory: Factory) -> None:
    keys = await factory.app()
    await create(client, keys.server, redirect_url="https://play.example.com/join", admins=["lead"])
    lead = (await client.get("/v1/players/lead/communities", headers=keys.server)).json()[0]
    ana = (await join(client, keys.server, "crypto-warriors", player_id="ana")).json()
    clicks = []
    for n, code in enumerate([lead["member_code"], lead["member_code"], ana["member_code"], None]):
        path = f"/c/{keys.app_id}/crypto-warriors" + (f"/{code}" if code else "")
        async with visitor(engine, f"198.51.100.{n + 1}") as browser:
            clicks.append(click_id(await click(browser, path)))
    await join(client, keys.server, "crypto-warriors", player_id="new-1", click_id=clicks[0])
    await join(client, keys.server, "crypto-warriors", player_id="new-2", click_id=clicks[3])

    stats = await analytics(client, keys.server, "crypto-warriors")
    assert stats["totals"] == {"clicks": 4, "unique_visitors": 4, "joins": 2, "conversion": 0.5}
    assert stats["by_member"] == [
        {"member_code": None, "player_id": None, "clicks": 1, "unique_visitors": 1, "joins": 1, "conversion": 1.0},
        *sorted([{"member_code": lead["member_code"], "player_id": "lead", "clicks": 2, "unique_visitors": 2,
                  "joins": 1, "conversion": 0.5},
                 {"member_code": ana["member_code"], "player_id": "ana", "clicks": 1, "unique_visitors": 1,
                  "joins": 0, "conversion": 0.0}], key=lambda m: m["member_code"])]
    assert len(stats["by_day"]) == 30 and stats["by_day"][-1]["clicks"] == 4 and stats["by_day"][-1]["joins"] == 2

    resp = await client.get("/v1/communities/crypto-warriors/links/analytics", headers=keys.server,
                            params={"format": "csv"})
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/csv")
    assert "attachment" in resp.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(resp.text)))
    assert rows[-1] == {"section": "total", "day": "", "member_code": "", "player_id": "", "clicks": "4",
                        "unique_visitors": "4", "filtered": "0", "joins": "2", "conversion": "0.5000"}
    assert {r["player_id"] for r in rows if r["section"] == "member"} == {"", "lead", "ana"}

    # The community's admin (a player) may look; another member may not.
    lead_token = await factory.player_token(keys, "lead")
    assert (await client.get("/v1/communities/crypto-warriors/links/analytics", headers=lead_token)).status_code \
        == 200
    ana_token = await factory.player_token(keys, "ana")
    problem(await client.get("/v1/communities/crypto-warriors/links/analytics", headers=ana_token), 403,
            "community_admin_required")
    problem(await client.get("/v1/communities/crypto-warriors/links/analytics", headers=keys.server,
                             params={"first_day": "2026-02-01", "last_day": "2026-01-01"}), 422, "invalid_range")
    problem(await client.get("/v1/communities/crypto-warriors/links/analytics", headers=keys.server,
                             params={"first_day": "2024-01-01", "last_day": "2026-01-01"}), 422, "invalid_range")
    problem(await client.get("/v1/communities/nope/links/analytics", headers=keys.server), 404,
            "community_not_found")
