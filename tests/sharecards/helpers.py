"""Helpers for share card tests: an app where players achieved one thing of each kind, and reads."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from html.parser import HTMLParser
from typing import Any

import httpx

from questline.kit.clock import ManualClock
from questline.kit.runtime import Runtime
from tests.competitions.helpers import competition, create, join, tick, trade, trades
from tests.conftest import AppKeys
from tests.factories import define, event, send, set_player
from tests.pipeline.helpers import settle

DEFINITIONS: dict[str, dict[str, Any]] = {
    "achievement": {"first-win": {"name": "First Blood", "description": "Win a match"},
                    "vip": {"name": "VIP", "description": "Met the team"},
                    "locked": {"name": "Never Yours"}},
    "xp_track": {"xp": {"name": "Experience", "curve": {"type": "table", "thresholds": [100, 200, 300]},
                        "level_names": {"3": "Adept"}}},
    "xp_rule": {"play-xp": {"track": "xp", "event_type": "session.played", "amount": 100}},
    "streak": {"daily": {"name": "Daily play", "event_types": ["session.played"], "milestones": [1, 2, 7]}},
}


def at(hour: int, minute: int = 0, second: int = 0) -> datetime:
    return datetime(2026, 3, 10, hour, minute, second, tzinfo=UTC)


def iso(hour: int, minute: int = 0) -> str:
    return at(hour, minute).isoformat().replace("+00:00", "Z")


async def grant(client: httpx.AsyncClient, keys: AppKeys, player: str, key: str) -> None:
    resp = await client.post(f"/v1/players/{player}/achievements/{key}/grant",
                             headers={**keys.server, "Idempotency-Key": uuid.uuid4().hex})
    assert resp.status_code == 201, resp.text


async def arena(client: httpx.AsyncClient, keys: AppKeys, runtime: Runtime, clock: ManualClock,
                maya: str, noor: str) -> str:
    """Maya: First Blood, level 3 (Adept), a 2-day streak, 1st in the cup. Noor: VIP, level 2, 1 day, 2nd.

    Returns the cup's id."""
    await set_player(client, keys, maya, username="Maya")
    await set_player(client, keys, noor, username="Noor")
    await define(client, keys, DEFINITIONS)
    await grant(client, keys, maya, "first-win")
    await grant(client, keys, noor, "vip")
    await send(client, keys, event(maya, "2026-03-09T10:00:00Z", "session.played"),
               event(maya, "2026-03-10T10:00:00Z", "session.played"),
               event(noor, "2026-03-10T10:00:00Z", "session.played"))
    await settle(runtime)
    cup = (await create(client, keys, competition(iso(13), iso(15))))["id"]
    for who in (maya, noor):
        assert (await join(client, keys, cup, who)).status_code == 201
    await tick(runtime, clock, at(13, 0, 5))
    await trades(client, keys, runtime, [trade(maya, 300, iso(13, 10)), trade(noor, 100, iso(13, 20))])
    clock.set(at(13, 30))
    ended = await client.post(f"/v1/competitions/{cup}/end", headers=keys.server)
    assert ended.status_code == 200 and ended.json()["status"] == "completed", ended.text
    return str(cup)


async def make_public(client: httpx.AsyncClient, headers: dict[str, str], player: str, public: bool = True) -> None:
    resp = await client.put(f"/v1/players/{player}/share-settings", headers=headers, json={"public": public})
    assert resp.status_code == 200 and resp.json() == {"player_id": player, "public": public}, resp.text


async def card(client: httpx.AsyncClient, headers: dict[str, str], player: str, **body: Any) -> httpx.Response:
    return await client.post(f"/v1/players/{player}/share-cards", headers=headers, json=body)


class Meta(HTMLParser):
    """The page's <meta> tags (property or name -> every content), its <title> and <img> sources."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.tags: dict[str, list[str]] = {}
        self.title = ""
        self.images: list[str] = []
        self._in_title = False
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "meta" and (values.get("property") or values.get("name")):
            key = values.get("property") or values.get("name") or ""
            self.tags.setdefault(key, []).append(values.get("content") or "")
        elif tag == "img":
            self.images.append(values.get("src") or "")
        self._in_title = tag == "title"

    def handle_endtag(self, tag: str) -> None:
        self._in_title = False

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data

    def one(self, key: str) -> str:
        found = self.tags.get(key, [])
        assert len(found) == 1, (key, found)
        return found[0]


# A maker for the foundation's route walk (tests/foundation/test_access.py): a real card of app A's
# alice, public, so the walk checks other tenants and players against an id that exists.

async def make_card(world: Any, client: httpx.AsyncClient) -> str:
    keys: AppKeys = world.a
    await define(client, keys, {"achievement": {"walk-badge": {"name": "Walker"}}})
    await grant(client, keys, "alice", "walk-badge")
    await make_public(client, keys.server, "alice")
    resp = await card(client, keys.server, "alice", kind="achievement", subject="walk-badge")
    assert resp.status_code == 201, resp.text
    return str(resp.json()["id"])
