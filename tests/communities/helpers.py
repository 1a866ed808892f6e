"""Helpers for community tests: communities made and joined through the API."""

from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import AppKeys
from tests.factories import balance, idem  # noqa: F401  (re-exported for the tests)


async def points(client: httpx.AsyncClient, keys: AppKeys) -> None:
    resp = await client.put("/v1/currencies/points", headers=keys.server, json={"name": "Points"})
    assert resp.status_code in (200, 201), resp.text


async def create(client: httpx.AsyncClient, headers: dict[str, str], slug: str = "crypto-warriors",
                 **body: Any) -> dict[str, Any]:
    resp = await client.post("/v1/communities", headers=headers,
                             json={"name": slug.replace("-", " ").title(), "slug": slug, **body})
    assert resp.status_code == 201, resp.text
    out: dict[str, Any] = resp.json()
    return out


async def join(client: httpx.AsyncClient, headers: dict[str, str], community: str, **body: Any) -> httpx.Response:
    return await client.post(f"/v1/communities/{community}/members", headers=headers, json=body)
