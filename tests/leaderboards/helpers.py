"""Helpers for leaderboard tests: define boards, set players' privacy, send scored events."""

from __future__ import annotations

import itertools
from typing import Any

import httpx

from questline.kit.runtime import Runtime
from tests.conftest import AppKeys
from tests.factories import define  # noqa: F401  (re-exported for the tests)
from tests.pipeline.helpers import send, settle

_ids = itertools.count(1)


async def player(client: httpx.AsyncClient, keys: AppKeys, player_id: str, **fields: Any) -> None:
    fields.setdefault("username", player_id.capitalize())
    resp = await client.put(f"/v1/players/{player_id}/account", headers=keys.server, json=fields)
    assert resp.status_code == 200, resp.text


def scored(player_id: str, points: int | float, ts: str, type_: str = "match.end", **data: Any) -> dict[str, Any]:
    return {"id": f"e-{next(_ids)}", "player_id": player_id, "type": type_, "data": {"points": points, **data},
            "timestamp": ts}


async def play(client: httpx.AsyncClient, keys: AppKeys, runtime: Runtime, events: list[dict[str, Any]]) -> None:
    resp = await send(client, keys, events)
    assert resp.status_code == 202, resp.text
    assert not resp.json()["rejected"], resp.text
    await settle(runtime)


def ranks(page: dict[str, Any]) -> list[tuple[int, str | None, int]]:
    return [(e["rank"], e["player_id"], e["score"]) for e in page["items"]]


async def board(client: httpx.AsyncClient, headers: dict[str, str], key: str, **params: Any) -> dict[str, Any]:
    resp = await client.get(f"/v1/leaderboards/{key}", headers=headers, params=params)
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body
