"""Helpers for referral tests: a program configured through the API, codes and tracked signups."""

from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import AppKeys
from tests.factories import balance, idem  # noqa: F401  (re-exported for the tests)

PROGRAM: dict[str, Any] = {
    "currency": "points", "code_word": "SWAN", "link": "https://example.com/join?ref={code}",
    "sharing_message": "Join me and get 500 bonus points! Use code {code}",
    "rewards": {"signed_up": {"referrer": 500, "referee": 500}, "converted": {"referrer": 2000},
                "paid_client": {"referrer": 1000}},
}


async def configure(client: httpx.AsyncClient, keys: AppKeys, program: dict[str, Any] | None = None) -> None:
    resp = await client.put("/v1/currencies/points", headers=keys.server, json={"name": "Points"})
    assert resp.status_code in (200, 201), resp.text
    resp = await client.put("/v1/definitions/referral_program/default", headers=keys.server,
                            json=program if program is not None else PROGRAM)
    assert resp.status_code in (200, 201), resp.text


async def code_of(client: httpx.AsyncClient, keys: AppKeys, player: str, **body: Any) -> str:
    resp = await client.post(f"/v1/players/{player}/referral-code", headers=keys.server, json=body)
    assert resp.status_code in (200, 201), resp.text
    return str(resp.json()["code"])


async def track(client: httpx.AsyncClient, keys: AppKeys, code: str, referee: str, *, key: str | None = None,
                **extra: Any) -> httpx.Response:
    return await client.post("/v1/referrals/track", headers=idem(keys.server, key),
                             json={"code": code, "referred_player_id": referee, **extra})


async def set_status(client: httpx.AsyncClient, keys: AppKeys, referral_id: str, status: str,
                     **extra: Any) -> httpx.Response:
    return await client.post(f"/v1/referrals/{referral_id}/status", headers=idem(keys.server),
                             json={"status": status, **extra})
