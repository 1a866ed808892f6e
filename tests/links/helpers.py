"""Helpers for link tests: visitors from their own addresses and browsers, clicks and joins."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from fastapi import FastAPI

CHROME = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
          "Chrome/131.0.0.0 Safari/537.36")
IPHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
          "Version/17.5 Mobile/15E148 Safari/604.1")


@asynccontextmanager
async def visitor(engine: FastAPI, address: str) -> AsyncIterator[httpx.AsyncClient]:
    """A browser calling from its own address (the engine sees it as the client's)."""
    transport = httpx.ASGITransport(app=engine, raise_app_exceptions=False, client=(address, 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://questline.test") as c:
        yield c


async def click(browser: httpx.AsyncClient, path: str, agent: str = CHROME, **headers: str) -> httpx.Response:
    named = {name.replace("_", "-"): value for name, value in headers.items()}
    resp = await browser.get(path, headers={"User-Agent": agent, **named})
    assert resp.status_code == 302, resp.text
    return resp


def click_id(resp: httpx.Response) -> str:
    return parse_qs(urlsplit(resp.headers["location"]).query)["ql_click"][0]


async def analytics(client: httpx.AsyncClient, headers: dict[str, str], community: str,
                    **params: Any) -> dict[str, Any]:
    resp = await client.get(f"/v1/communities/{community}/links/analytics", headers=headers, params=params)
    assert resp.status_code == 200, resp.text
    out: dict[str, Any] = resp.json()
    return out


async def make_community(world: Any, client: httpx.AsyncClient) -> str:
    """For the access walk: a community of app A with a link, alice a member of it; its slug."""
    resp = await client.post("/v1/communities", headers=world.a.server, json={
        "name": "Walk Guild", "slug": "walk-guild", "redirect_url": "https://play.example.com/walk"})
    assert resp.status_code in (201, 409), resp.text
    return "walk-guild"


async def make_member_code(world: Any, client: httpx.AsyncClient) -> str:
    """For the access walk: alice's member code in app A's community."""
    await make_community(world, client)
    resp = await client.post("/v1/communities/walk-guild/members", headers=world.a.server,
                             json={"player_id": "alice"})
    assert resp.status_code in (200, 201), resp.text
    return str(resp.json()["member_code"])
