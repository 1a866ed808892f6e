"""Helpers for chat and announcement tests: a community with members, a competition with entrants."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
import sqlalchemy as sa

from questline.kit.db import unit_of_work
from questline.kit.runtime import Runtime
from tests.conftest import AppKeys, Factory


@dataclass
class Room:
    keys: AppKeys
    community_id: str
    tokens: dict[str, dict[str, str]]

    @property
    def channel(self) -> str:
        return f"community:{self.community_id}"


async def community(client: httpx.AsyncClient, factory: Factory, keys: AppKeys | None = None, *,
                    members: tuple[str, ...] = ("alice", "bob"), outsiders: tuple[str, ...] = ("carol",),
                    slug: str = "night-owls") -> Room:
    """A community administered by ``mod`` with active ``members``; tokens for everyone."""
    keys = keys or await factory.app()
    resp = await client.post("/v1/communities", headers=keys.server,
                             json={"name": "Night Owls", "slug": slug, "admins": ["mod"]})
    assert resp.status_code == 201, resp.text
    community_id = resp.json()["id"]
    for player in members:
        joined = await client.post(f"/v1/communities/{community_id}/members", headers=keys.server,
                                   json={"player_id": player})
        assert joined.status_code == 201, joined.text
    tokens = {p: await factory.player_token(keys, p) for p in ("mod", *members, *outsiders)}
    return Room(keys, community_id, tokens)


async def post(client: httpx.AsyncClient, room: Room, who: str, body: str,
               channel: str | None = None) -> httpx.Response:
    return await client.post(f"/v1/chat/{channel or room.channel}/messages", headers=room.tokens[who],
                             json={"body": body})


def posted(resp: httpx.Response) -> dict[str, Any]:
    assert resp.status_code == 201, resp.text
    out: dict[str, Any] = resp.json()
    return out


async def rows(runtime: Runtime, table: str, app_id: str) -> list[dict[str, Any]]:
    async with unit_of_work(runtime.sessions) as session:
        found = await session.execute(sa.text(f"SELECT * FROM {table} WHERE app_id = :app"), {"app": app_id})
        return [dict(r) for r in found.mappings()]


# Makers for the foundation's route walk (tests/foundation/test_access.py): a real chat room of
# app A (with a message and a report in it) and a real announcement.


async def make_channel(world: Any, client: httpx.AsyncClient) -> str:
    resp = await client.post("/v1/communities", headers=world.a.server,
                             json={"name": "Walkers", "slug": "walkers", "admins": ["alice"]})
    assert resp.status_code == 201, resp.text
    community_id = resp.json()["id"]
    joined = await client.post(f"/v1/communities/{community_id}/members", headers=world.a.server,
                               json={"player_id": "bob"})
    assert joined.status_code == 201, joined.text
    channel = f"community:{community_id}"
    message = await client.post(f"/v1/chat/{channel}/messages", headers=world.a.server,
                                json={"body": "hello walkers", "player_id": "alice"})
    assert message.status_code == 201, message.text
    world.values["message_id"] = message.json()["id"]
    report = await client.post(f"/v1/chat/{channel}/messages/{message.json()['id']}/reports",
                               headers=world.a.server, json={"reason": "walk", "player_id": "bob"})
    assert report.status_code == 201, report.text
    world.values["report_id"] = report.json()["id"]
    return channel


async def make_message(world: Any, client: httpx.AsyncClient) -> str:
    return str(world.values["message_id"])


async def make_report(world: Any, client: httpx.AsyncClient) -> str:
    return str(world.values["report_id"])


async def make_announcement(world: Any, client: httpx.AsyncClient) -> str:
    resp = await client.post("/v1/announcements", headers=world.a.server,
                             json={"target": {"kind": "app"}, "title": "Walk", "body": "A walk announcement",
                                   "send_at": "2031-01-01T00:00:00Z"})
    assert resp.status_code == 201, resp.text
    return str(resp.json()["id"])
