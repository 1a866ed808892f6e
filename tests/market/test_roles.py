"""Brand and streamer tokens, walked over every route: each reaches its own account and nothing else.

The foundation's walk (tests/foundation/test_access.py) tries server keys, client keys, player tokens
and admins; this one adds the marketplace's roles: another brand and another streamer of the same
app, and a brand and a streamer of another app, against a victim brand (with a member, a campaign
and a creative) and a victim streamer (who joined the campaign).
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx
from fastapi import FastAPI

from questline.kit.routing import exposed_api_routes
from questline.kit.runtime import Runtime
from questline.tenancy.auth import ANONYMOUS, BRAND, STREAMER, AccessPolicy, route_access
from tests.conftest import Factory
from tests.market.helpers import Market, idem
from tests.market.test_assets import image, upload

BRAND_IDS = {"brand_id", "campaign_id", "asset_id", "member_id", "dispute_id"}
# What another streamer of the same app may legitimately do with the victim brand's campaign.
OPEN_TO_STREAMERS = {("GET", "/v1/campaigns/{campaign_id}"), ("POST", "/v1/campaigns/{campaign_id}/join")}


def params_of(path: str) -> set[str]:
    return set(re.findall(r"{([^}:]+)", path))


async def test_marketplace_tokens_reach_only_their_own(client: httpx.AsyncClient, engine: FastAPI,
                                                       runtime: Runtime, factory: Factory) -> None:
    keys = await factory.app()
    market = Market(client, keys)
    victim = await market.brand(name=f"victim-{uuid.uuid4().hex[:6]}")
    campaign = await market.campaign(victim)
    asset = (await upload(client, campaign["id"], keys.server, image("PNG", (32, 32)))).json()
    member = (await market.ok("GET", f"/v1/brands/{victim.id}/members", headers=keys.server))[0]
    streamer = await market.streamer()
    assert (await market.join(campaign["id"], streamer)).status_code == 201
    await market.impressions(campaign["id"], [("roles-1", streamer.id, 100)])
    dispute = await market.ok("POST", "/v1/disputes", 201, headers=victim.headers, json={
        "campaign_id": campaign["id"], "streamer_id": streamer.id, "impressions": 10, "reason": "walk"})
    values = {"brand_id": victim.id, "campaign_id": campaign["id"], "asset_id": asset["id"],
              "member_id": member["id"], "streamer_id": streamer.id, "category": "gaming", "platform": "twitch",
              "rule_id": "cfr_00000000000000000000000000", "token": "not-a-token-0000000000",
              "dispute_id": dispute["id"]}

    other_brand, other_streamer = await market.brand(), await market.streamer()
    elsewhere = Market(client, await factory.app())
    foreign_brand, foreign_streamer = await elsewhere.brand(), await elsewhere.streamer()
    attackers: list[tuple[str, dict[str, str], Any]] = [
        ("another brand", other_brand.headers, lambda p, m, path: bool(p & BRAND_IDS)),
        ("another streamer", other_streamer.headers,
         lambda p, m, path: "streamer_id" in p or (bool(p & BRAND_IDS) and (m, path) not in OPEN_TO_STREAMERS)),
        ("a brand of another app", foreign_brand.headers, lambda p, m, path: bool(p)),
        ("a streamer of another app", foreign_streamer.headers, lambda p, m, path: bool(p)),
    ]
    failures, walked = [], 0
    for route in exposed_api_routes(engine.routes):
        access = route_access(route)
        if access == ANONYMOUS or not isinstance(access, AccessPolicy) or not access.kinds & {BRAND, STREAMER}:
            continue
        params = params_of(route.path)
        # Parameters of later areas (an inbox entry, a withdrawal…) get a placeholder: what must be
        # refused is decided by the brand and streamer ids in the path.
        url = re.sub(r"{([^}:]+)(?::[^}]*)?}", lambda m: values.get(m.group(1), f"x{m.group(1)}0000"), route.path)
        for method in sorted(route.methods):
            for who, headers, must_refuse in attackers:
                kwargs: dict[str, Any] = {"headers": idem(headers)}
                if method in {"POST", "PUT", "PATCH"}:
                    kwargs["json"] = {}
                resp = await client.request(method, url, **kwargs)
                walked += 1
                if resp.status_code >= 500:
                    failures.append(f"{method} {route.path} as {who}: {resp.status_code}")
                elif must_refuse(params, method, route.path) and resp.is_success:
                    failures.append(f"{method} {route.path} as {who}: {resp.status_code} {resp.text[:200]}")
                elif victim.body["company_name"] in resp.text and who != "another streamer":
                    failures.append(f"{method} {route.path} as {who} shows the victim brand")
    assert not failures, "\n".join(failures)
    assert walked > 100
    # The victim's state is as it was: still joined, the campaign running, the member still there.
    assert (await market.campaign_state(campaign["id"]))["status"] == "active"
    part = await market.ok("GET", f"/v1/campaigns/{campaign['id']}/participants/{streamer.id}", headers=keys.server)
    assert part["status"] == "active"
    assert (await market.ok("GET", f"/v1/brands/{victim.id}/members", headers=keys.server))[0]["removed_at"] is None
    assert (await market.ok("GET", f"/v1/disputes/{dispute['id']}", headers=victim.headers))["evidence"] == []
