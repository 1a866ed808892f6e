"""Helpers for the marketplace tests: brands, streamers, funded campaigns, joins, impressions, all over HTTP."""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
import sqlalchemy as sa

from questline.kit.db import unit_of_work
from questline.kit.runtime import Runtime
from questline.ledger import service as ledger
from questline.ledger.schemas import Violation
from tests.conftest import AppKeys

_n = itertools.count(1)
PASSWORD = "correct horse battery staple"


def idem(headers: dict[str, str], key: str | None = None) -> dict[str, str]:
    return {**headers, "Idempotency-Key": key or uuid.uuid4().hex}


@dataclass
class Account:
    id: str
    headers: dict[str, str]
    body: dict[str, Any] = field(default_factory=dict)
    email: str = ""
    role: str = ""


class Market:
    """One app's marketplace, driven through the API as its server key, brands and streamers would."""

    def __init__(self, client: httpx.AsyncClient, keys: AppKeys) -> None:
        self.client = client
        self.keys = keys

    @property
    def server(self) -> dict[str, str]:
        return self.keys.server

    async def ok(self, method: str, url: str, status: int = 200, **kwargs: Any) -> Any:
        resp = await self.client.request(method, url, **kwargs)
        assert resp.status_code == status, f"{method} {url}: {resp.status_code} {resp.text}"
        return resp.json() if resp.content and resp.headers.get("content-type", "").startswith(
            ("application/json", "application/problem+json")) else resp

    async def settings(self, **changes: Any) -> dict[str, Any]:
        current = await self.ok("GET", "/v1/marketplace/settings", headers=self.server)
        return dict(await self.ok("PUT", "/v1/marketplace/settings", headers=self.server, json={**current, **changes}))

    async def brand(self, industry: str = "beverages", name: str | None = None) -> Account:
        n = next(_n)
        email = f"brand{n}-{uuid.uuid4().hex[:6]}@example.test"
        body = await self.ok("POST", "/v1/brands", 201, headers=self.keys.client, json={
            "company_name": name or f"Brand {n}", "industry": industry,
            "owner": {"email": email, "password": PASSWORD, "name": "Owner"}})
        account = Account(body["id"], {}, body, email, "brand")
        await self.sign_in(account)
        return account

    async def sign_in(self, account: Account) -> Account:
        """A fresh token (tokens live an hour; tests that move the clock sign in again)."""
        token = await self.ok("POST", f"/v1/{account.role}s/login", headers=self.keys.client,
                              json={"email": account.email, "password": PASSWORD})
        account.headers = {"Authorization": f"Bearer {token['token']}"}
        return account

    async def streamer(self, *, platforms: dict[str, int] | None = None, categories: list[str] | None = None,
                       country: str | None = "DE", timezone: str | None = None,
                       content_categories: list[str] | None = None) -> Account:
        """A signed-up streamer whose channels (platform -> followers) are verified by the platform."""
        n = next(_n)
        email = f"streamer{n}-{uuid.uuid4().hex[:6]}@example.test"
        platforms = {"twitch": 5000} if platforms is None else platforms
        body = await self.ok("POST", "/v1/streamers", 201, headers=self.keys.client, json={
            "email": email, "password": PASSWORD, "display_name": f"Streamer {n}",
            **({"timezone": timezone} if timezone else {}),
            "content_categories": content_categories if content_categories is not None else ["gaming"],
            "platforms": [{"name": p, "username": f"s{n}-{p}"} for p in platforms]})
        sid = body["id"]
        for p in platforms:
            await self.ok("POST", f"/v1/streamers/{sid}/platforms/{p}/verification", headers=self.server,
                          json={"status": "verified"})
        await self.ok("PUT", f"/v1/streamers/{sid}/audience", headers=self.server, json={
            "demographics": {"primary_country": country} if country else {},
            "platforms": {p: {"followers": f, "average_viewers": f // 10, "peak_viewers": f // 5,
                              "content_categories": categories if categories is not None else ["gaming"]}
                          for p, f in platforms.items()}})
        return await self.sign_in(Account(sid, {}, body, email, "streamer"))

    async def deposit(self, brand: Account, amount: int, currency: str = "USD") -> dict[str, Any]:
        return dict(await self.ok("POST", f"/v1/brands/{brand.id}/wallet/deposits", 201, headers=idem(self.server),
                                  json={"currency": currency, "amount": amount}))

    async def campaign(self, brand: Account, *, budget: int = 10_000, rate: int = 500, approve: bool = True,
                       fund: bool = True, by_server: bool = False, **fields: Any) -> dict[str, Any]:
        """A campaign of the brand (funded with exactly its budget, submitted and approved by default);
        made with the brand's token, or ``by_server`` (once the brand's token has expired)."""
        if fund and approve:
            await self.deposit(brand, budget, fields.get("currency", "USD"))
        body = {"title": f"Campaign {next(_n)}", "currency": "USD", "budget": budget, "rate_per_mille": rate,
                "categories": ["gaming"], **fields}
        headers = brand.headers
        if by_server:
            headers, body["brand_id"] = self.server, brand.id
        made = await self.ok("POST", "/v1/campaigns", 201, headers=headers, json=body)
        if not approve:
            return dict(made)
        await self.ok("POST", f"/v1/campaigns/{made['id']}/submit", headers=headers)
        return dict(await self.ok("POST", f"/v1/campaigns/{made['id']}/approve", headers=self.server))

    async def join(self, campaign_id: str, streamer: Account) -> httpx.Response:
        return await self.client.post(f"/v1/campaigns/{campaign_id}/join", headers=idem(streamer.headers), json={})

    async def impressions(self, campaign_id: str, records: list[tuple[str, str, int]]) -> dict[str, Any]:
        """records: (id, streamer_id, count)."""
        return dict(await self.ok("POST", f"/v1/campaigns/{campaign_id}/impressions", headers=self.server, json={
            "impressions": [{"id": i, "streamer_id": s, "count": c} for i, s, c in records]}))

    async def wallet(self, kind: str, owner: str | None = None, currency: str = "USD") -> dict[str, int]:
        url = "/v1/platform/wallet" if kind == "platform" else f"/v1/{kind}s/{owner}/wallet"
        body = await self.ok("GET", url, headers=self.server)
        found = next((b for b in body["balances"] if b["currency"] == currency), None)
        return {"available": 0, "held": 0, "pending": 0} if found is None else \
            {k: found[k] for k in ("available", "held", "pending")}

    async def key(self, streamer: Account, category: str = "gaming") -> dict[str, Any]:
        return dict(await self.ok("GET", f"/v1/streamers/{streamer.id}/keys/{category}", headers=self.server))

    async def energy(self, streamer: Account) -> dict[str, Any]:
        return dict(await self.ok("GET", f"/v1/streamers/{streamer.id}/energy", headers=self.server))

    async def campaign_state(self, campaign_id: str) -> dict[str, Any]:
        return dict(await self.ok("GET", f"/v1/campaigns/{campaign_id}", headers=self.server))

    async def outbox(self, prefix: str = "") -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        cursor = None
        while True:
            params: dict[str, Any] = {"limit": 200, **({"cursor": cursor} if cursor else {})}
            body = await self.ok("GET", "/v1/outbox", headers=self.server, params=params)
            items += [m for m in body["items"] if m["type"].startswith(prefix)]
            cursor = body["next_cursor"]
            if not cursor:
                return items


async def verify(runtime: Runtime, app_id: str) -> list[Violation]:
    async with unit_of_work(runtime.sessions) as session:
        return await ledger.verify(session, app_id)


async def count(runtime: Runtime, table: str, app_id: str, **where: str) -> int:
    """Rows of the app in a table (and matching ``where`` column values)."""
    clauses = "".join(f" AND {column} = :{column}" for column in where)
    async with unit_of_work(runtime.sessions) as session:
        return int((await session.execute(sa.text(f"SELECT count(*) FROM {table} WHERE app_id = :a{clauses}"),
                                          {"a": app_id, **where})).scalar_one())


# Makers for the foundation's route walk (tests/foundation/test_access.py): real marketplace resources
# of app A, so the walk checks other tenants against ids that exist.

async def make_brand(world: Any, client: httpx.AsyncClient) -> str:
    brand = await Market(client, world.a).brand()
    world.market_brand = brand
    return brand.id


async def make_streamer(world: Any, client: httpx.AsyncClient) -> str:
    return (await Market(client, world.a).streamer()).id


async def make_member(world: Any, client: httpx.AsyncClient) -> str:
    market = Market(client, world.a)
    brand = getattr(world, "market_brand", None) or await market.brand()
    members = await market.ok("GET", f"/v1/brands/{brand.id}/members", headers=world.a.server)
    return str(members[0]["id"])


async def make_campaign(world: Any, client: httpx.AsyncClient) -> str:
    market = Market(client, world.a)
    brand = getattr(world, "market_brand", None) or await market.brand()
    return str((await market.campaign(brand, title="walk campaign"))["id"])


async def make_rule(world: Any, client: httpx.AsyncClient) -> str:
    market = Market(client, world.a)
    body = await market.ok("POST", "/v1/conflict-rules", 201, headers=world.a.server, json={
        "name": "one per platform", "rule": {"kind": "platform_exclusivity", "max_active": 5}})
    return str(body["id"])


async def make_asset(world: Any, client: httpx.AsyncClient) -> str:
    from tests.market.test_assets import image, upload

    campaign_id = world.values.get("campaign_id") or await make_campaign(world, client)
    made = await upload(client, campaign_id, world.a.server, image("PNG", (64, 64)))
    assert made.status_code == 201, made.text
    return str(made.json()["id"])


async def make_category(world: Any, client: httpx.AsyncClient) -> str:
    return "gaming"


async def make_platform(world: Any, client: httpx.AsyncClient) -> str:
    return "twitch"
