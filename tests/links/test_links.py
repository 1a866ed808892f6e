"""Community referral links: the redirect goes only to the community's own https URL with a signed,
short-lived click id; clicks count once per visitor and day, never bots or prefetches; a join that
presents the click id is attributed to the member whose link it was, and nothing else is."""

from __future__ import annotations

from collections import Counter
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI

from questline.kit.clock import ManualClock
from questline.kit.runtime import Runtime
from questline.links.models import LinkClick, LinkSalt
from tests.communities.helpers import create, join
from tests.conftest import Factory, problem
from tests.links.helpers import CHROME, IPHONE, analytics, click, click_id, visitor


async def test_a_link_redirects_only_to_its_community_url(client: httpx.AsyncClient, engine: FastAPI,
                                                          factory: Factory) -> None:
    keys = await factory.app()
    out = await create(client, keys.server, redirect_url="https://play.example.com/join?src=guild#top")
    assert out["link"] == f"/c/{keys.app_id}/crypto-warriors"
    async with visitor(engine, "198.51.100.7") as browser:
        # Whatever the request carries, the target is the community's URL (its own query kept).
        resp = await click(browser, out["link"] + "?to=https://evil.example/&redirect_url=https://evil.example/")
        location = urlsplit(resp.headers["location"])
        assert (location.scheme, location.netloc, location.path, location.fragment) == (
            "https", "play.example.com", "/join", "top")
        query = parse_qs(location.query)
        assert query["src"] == ["guild"] and len(query["ql_click"]) == 1 and set(query) == {"src", "ql_click"}
        assert resp.headers["cache-control"] == "no-store"
        assert resp.headers["referrer-policy"] == "no-referrer"
        # A HEAD is answered but not recorded, and carries no click id.
        head = await browser.head(out["link"], headers={"User-Agent": CHROME})
        assert head.status_code == 302 and head.headers["location"] == "https://play.example.com/join?src=guild#top"
        # Unknown communities, apps and malformed member codes: 404, never a redirect elsewhere.
        problem(await browser.get(f"/c/{keys.app_id}/no-such-guild", headers={"User-Agent": CHROME}), 404,
                "link_not_found")
        other = await factory.app()
        problem(await browser.get(f"/c/{other.app_id}/crypto-warriors", headers={"User-Agent": CHROME}), 404,
                "link_not_found")
        assert (await browser.get(f"/c/{keys.app_id}/crypto-warriors/not-a-code")).status_code == 422
        # A community without a redirect URL has no link.
        await create(client, keys.server, slug="quiet-guild")
        problem(await browser.get(f"/c/{keys.app_id}/quiet-guild", headers={"User-Agent": CHROME}), 404,
                "link_not_found")
    # The same slug in another app leads to that app's own URL.
    await create(client, other.server, redirect_url="https://other.example.com/")
    async with visitor(engine, "198.51.100.8") as browser:
        resp = await click(browser, f"/c/{other.app_id}/crypto-warriors")
        assert resp.headers["location"].startswith("https://other.example.com/?ql_click=")
    # Only https URLs of one's own are saved: no open redirect through a community.
    for bad in ("http://play.example.com/join", "javascript:alert(1)", "https://user:pw@play.example.com/",
                "ftp://play.example.com/"):
        resp = await client.post("/v1/communities", headers=keys.server,
                                 json={"name": "Bad", "slug": "bad-guild", "redirect_url": bad})
        problem(resp, 422, "validation_failed")
        problem(await client.patch("/v1/communities/crypto-warriors", headers=keys.server,
                                   json={"redirect_url": bad}), 422, "validation_failed")
    assert (await client.get("/v1/communities/crypto-warriors", headers=keys.server)).json()["redirect_url"] == \
        "https://play.example.com/join?src=guild#top"


async def test_forged_expired_foreign_or_used_click_ids_attribute_nothing(
        client: httpx.AsyncClient, engine: FastAPI, factory: Factory, clock: ManualClock) -> None:
    keys = await factory.app()
    await create(client, keys.server, redirect_url="https://play.example.com/join")
    await create(client, keys.server, slug="other-guild", redirect_url="https://play.example.com/other")
    lead = (await join(client, keys.server, "crypto-warriors", player_id="lead")).json()
    async with visitor(engine, "198.51.100.7") as browser:
        good = click_id(await click(browser, f"/c/{keys.app_id}/crypto-warriors/{lead['member_code']}"))
        foreign = click_id(await click(browser, f"/c/{keys.app_id}/other-guild"))
    other = await factory.app()
    await create(client, other.server, redirect_url="https://play.example.com/join")
    async with visitor(engine, "198.51.100.9") as browser:
        other_app = click_id(await click(browser, f"/c/{other.app_id}/crypto-warriors"))

    body, _, signature = good.rpartition(".")
    forged_member = body.rsplit(".", 2)[0] + ".ZZZZZZZZ." + body.rsplit(".", 1)[1] + "." + signature
    tampered = body + "." + ("A" if signature[0] != "A" else "B") + signature[1:]
    cases = [("ann", tampered, "invalid"), ("ben", forged_member, "invalid"), ("cy", other_app, "invalid"),
             ("dee", foreign, "other_community"), ("eve", "x" * 40, "invalid")]
    for player, token, verdict in cases:
        resp = await join(client, keys.server, "crypto-warriors", player_id=player, click_id=token)
        assert resp.status_code == 201, resp.text
        assert resp.json()["click"] == verdict and resp.json()["referred_by"] is None, (player, resp.json())

    # Expired: a week and a bit later the same, genuine click id attributes nothing.
    clock.advance(days=7, seconds=1)
    resp = await join(client, keys.server, "crypto-warriors", player_id="fay", click_id=good)
    assert resp.json()["click"] == "expired" and resp.json()["referred_by"] is None
    clock.advance(days=-7, seconds=-2)
    resp = await join(client, keys.server, "crypto-warriors", player_id="gus", click_id=good)
    assert resp.json()["click"] == "attributed" and resp.json()["referred_by"] == "lead"
    # One click attributes one join: the same id again is used.
    resp = await join(client, keys.server, "crypto-warriors", player_id="hal", click_id=good)
    assert resp.json()["click"] == "used" and resp.json()["referred_by"] is None
    # Joining again changes nothing; a bad click id is never a reason to refuse a join.
    again = await join(client, keys.server, "crypto-warriors", player_id="gus", click_id=good)
    assert again.status_code == 200 and again.json()["referred_by"] == "lead"
    stats = await analytics(client, keys.server, "crypto-warriors")
    assert stats["totals"]["joins"] == 1
    assert [m for m in stats["by_member"] if m["joins"]] == [
        {"member_code": lead["member_code"], "player_id": "lead", "clicks": 1, "unique_visitors": 1, "joins": 1,
         "conversion": 1.0}]


async def test_clicks_count_once_per_visitor_and_day_never_bots_or_prefetches(
        client: httpx.AsyncClient, engine: FastAPI, factory: Factory, clock: ManualClock, runtime: Runtime) -> None:
    keys = await factory.app()
    await create(client, keys.server, redirect_url="https://play.example.com/join")
    lead = (await join(client, keys.server, "crypto-warriors", player_id="lead")).json()
    own = f"/c/{keys.app_id}/crypto-warriors"
    mine = f"{own}/{lead['member_code']}"
    async with visitor(engine, "198.51.100.7") as ann:
        for _ in range(3):  # counted once
            await click(ann, mine, referer="https://twitter.com/some/post", accept_language="fr-CA,fr;q=0.9")
        await click(ann, own)  # another link: counted on that one
        await click(ann, mine, agent=IPHONE)  # another browser at the same address: another visitor
        for bot in ("Twitterbot/1.0", "facebookexternalhit/1.1", "Slackbot-LinkExpanding 1.0", "curl/8.5.0",
                    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", ""):
            await click(ann, mine, agent=bot)
    async with visitor(engine, "203.0.113.5") as ben:
        await click(ben, mine)
    async with visitor(engine, "203.0.113.6") as speculative:  # a browser's prefetch is no visit yet
        await click(speculative, mine, sec_purpose="prefetch;prerender")
        await click(speculative, own, purpose="prefetch")
    first = clock.now().date().isoformat()
    clock.advance(days=1)
    async with visitor(engine, "198.51.100.7") as ann:
        await click(ann, mine)  # a new day: counted again
    stats = await analytics(client, keys.server, "crypto-warriors", first_day=first)
    assert stats["totals"] == {"clicks": 5, "unique_visitors": 4, "joins": 0, "conversion": 0.0}
    assert stats["filtered"] == 2 + 2 + 6
    days = {d["day"]: d for d in stats["by_day"]}
    assert len(days) == 2 and days[first]["clicks"] == 4 and days[first]["unique_visitors"] == 3
    assert days[first]["filtered"] == 10
    by_member = {m["member_code"]: m for m in stats["by_member"]}
    assert by_member[lead["member_code"]]["clicks"] == 4 and by_member[None]["clicks"] == 1

    async with runtime.read_sessions() as session:
        rows = (await session.execute(sa.select(LinkClick).where(LinkClick.app_id == keys.app_id))).scalars().all()
        salts = (await session.execute(sa.select(LinkSalt.day))).scalars().all()
    # No address is stored anywhere, only coarse hints; yesterday's salt is gone.
    assert all("198.51.100.7" not in str(vars(r)) and "203.0.113.5" not in str(vars(r)) for r in rows)
    assert {"device": "desktop", "os": "windows", "browser": "chrome", "language": "fr",
            "from": "twitter.com"} in [r.hints for r in rows]
    assert {"device": "mobile", "os": "ios", "browser": "safari"} in [r.hints for r in rows]
    assert salts == [clock.now().date().isoformat()]
    assert Counter(r.outcome for r in rows) == {"counted": 5, "repeat": 2, "bot": 6, "prefetch": 2}
    # The day's visitor hash differs from yesterday's for the same browser.
    day_one = {r.visitor for r in rows if r.outcome == "counted" and r.hints.get("from") == "twitter.com"}
    day_two = {r.visitor for r in rows if r.day != first}
    assert len(day_one) == len(day_two) == 1 and day_one != day_two


@pytest.mark.parametrize("limit", ["3/minute"])
async def test_the_public_link_is_rate_limited_per_address(client: httpx.AsyncClient, engine: FastAPI,
                                                          factory: Factory, runtime: Runtime, limit: str) -> None:
    runtime.settings = runtime.settings.model_copy(update={"rate_limit_links": limit})
    keys = await factory.app()
    await create(client, keys.server, redirect_url="https://play.example.com/join")
    async with visitor(engine, "198.51.100.70") as browser:
        for _ in range(3):
            await click(browser, f"/c/{keys.app_id}/crypto-warriors")
        resp = await browser.get(f"/c/{keys.app_id}/crypto-warriors", headers={"User-Agent": CHROME})
        problem(resp, 429, "rate_limited")
    async with visitor(engine, "198.51.100.71") as other:
        await click(other, f"/c/{keys.app_id}/crypto-warriors")
