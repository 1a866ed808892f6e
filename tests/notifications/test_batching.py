"""What the relay's notifications subscriber costs per batch: templates held in process (and
dropped when an app changes them, in every engine sharing the Redis), the whole batch's audience
read once and its rows written together, whatever the number of messages."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from questline.app import create_app
from questline.kit.clock import ManualClock
from questline.kit.db import unit_of_work
from questline.kit.pagination import PageParams
from questline.kit.runtime import Runtime
from questline.notifications import service as notifications
from tests.conftest import Factory, lifespan
from tests.notifications.helpers import channels_to, contacts, message, relay
from tests.pipeline.helpers import recorded_statements


async def titles(client: httpx.AsyncClient, headers: dict[str, str], player: str) -> list[str]:
    resp = await client.get(f"/v1/players/{player}/notifications", headers=headers)
    assert resp.status_code == 200, resp.text
    return [n["title"] for n in resp.json()["items"]]


async def test_a_batch_of_messages_costs_the_same_statements_as_one(
        client: httpx.AsyncClient, factory: Factory, runtime: Runtime, clock: ManualClock) -> None:
    keys = await factory.app()
    channels_to(runtime, smtp_port=2525)
    players = [f"p{i}" for i in range(12)]
    for player in players:
        await contacts(client, keys, player, email=f"{player}@example.com")
    await client.put("/v1/players/p0/notification-preferences", headers=keys.server,
                     json={"defaults": {"email": True}})
    await client.put("/v1/players/p1/notification-preferences", headers=keys.server,
                     json={"defaults": {"email": True, "in_app": False}})
    now = clock.now()
    # Most messages make no notification at all: they are passed over without a statement.
    quiet = [message(keys.app_id, 1000 + i, "stat.changed", p, now, stat="wins", value=i)
             for i, p in enumerate(players)]
    with recorded_statements(runtime) as seen:
        await relay(runtime, quiet)
    assert seen == []

    await contacts(client, keys, "warm")
    await relay(runtime, [message(keys.app_id, 2, "level.up", "warm", now, track="xp", to=2)])  # the templates
    with recorded_statements(runtime) as one:
        await relay(runtime, [message(keys.app_id, 1, "level.up", "p0", now, track="xp", to=2)])
    batch = [message(keys.app_id, 10 + i, "level.up", p, now, track="xp", to=3) for i, p in enumerate(players)]
    with recorded_statements(runtime) as many:
        await relay(runtime, [*quiet, *batch])
    # Preferences, time zones, traits, the inbox entries and the deliveries: once per batch.
    assert len(many) == len(one)
    async with unit_of_work(runtime.sessions) as session:
        entries = {p: [e.title for e in (await notifications.inbox(session, keys.app_id, "player", p, None,
                                                                    PageParams(limit=10))).items]
                   for p in players}
        mailed = {p: [d["type"] for d in await notifications.deliveries_of(session, keys.app_id, p)]
                  for p in players}
    assert sorted(entries["p0"]) == ["Level 2!", "Level 3!"]
    assert entries["p1"] == []  # in-app turned off
    assert all(entries[p] == ["Level 3!"] for p in players[2:])
    assert mailed["p0"] == ["level_up", "level_up"] and mailed["p1"] == ["level_up"]
    assert all(mailed[p] == [] for p in players[2:])  # e-mail is off by default

    # Handed over again: nothing new, in one batch as well.
    with recorded_statements(runtime) as again:
        await relay(runtime, batch)
    assert len(again) == len(one) - 1  # nothing new: no unread count is read for the live inboxes
    assert not any("count(" in s for s in again)
    async with unit_of_work(runtime.sessions) as session:
        assert len((await notifications.inbox(session, keys.app_id, "player", "p5", None,
                                              PageParams(limit=10))).items) == 1
        assert len(await notifications.deliveries_of(session, keys.app_id, "p0")) == 2


async def test_templates_are_held_until_the_app_changes_them(
        client: httpx.AsyncClient, factory: Factory, runtime: Runtime, clock: ManualClock) -> None:
    keys = await factory.app()
    await contacts(client, keys, "ada")
    url = "/v1/notification-templates/level_up/en"
    assert (await client.put(url, headers=keys.server,
                             json={"subject": "Up to {{ to }}", "text": "Now {{ to }}."})).status_code == 200
    seq = iter(range(1, 100))

    async def level_up(to: int) -> list[str]:
        with recorded_statements(runtime) as seen:
            await relay(runtime, [message(keys.app_id, next(seq), "level.up", "ada", clock.now(), track="xp", to=to)])
        return seen

    await level_up(2)
    warm = await level_up(3)
    assert not any("notification_templates" in s for s in warm)  # the app's templates come from the cache
    assert (await client.put(url, headers=keys.server,
                             json={"subject": "Reached {{ to }}", "text": "Now {{ to }}."})).status_code == 200
    changed = await level_up(4)
    assert any("notification_templates" in s for s in changed)
    assert (await client.delete(url, headers=keys.server)).status_code == 204
    await level_up(5)
    assert sorted(await titles(client, keys.server, "ada")) == ["Level 5!", "Reached 4", "Up to 2", "Up to 3"]


async def test_a_template_changed_on_one_engine_is_used_at_once_by_another(
        client: httpx.AsyncClient, factory: Factory, runtime: Runtime, clock: ManualClock) -> None:
    if runtime.settings.redis_url is None:
        pytest.skip("engines share invalidations through Redis (the PostgreSQL + Redis backend)")
    keys = await factory.app()
    await contacts(client, keys, "bo")
    url = "/v1/notification-templates/level_up/en"
    assert (await client.put(url, headers=keys.server,
                             json={"subject": "First {{ to }}", "text": "x"})).status_code == 200
    second = Runtime.build(runtime.settings, clock)
    async with lifespan(create_app(runtime=second, background=False)):
        await relay(second, [message(keys.app_id, 1, "level.up", "bo", clock.now(), track="xp", to=2)])
        heard = second.caches.received
        assert (await client.put(url, headers=keys.server,
                                 json={"subject": "Second {{ to }}", "text": "x"})).status_code == 200
        for _ in range(2000):
            if second.caches.received > heard:
                break
            await asyncio.sleep(0.005)
        await relay(second, [message(keys.app_id, 2, "level.up", "bo", clock.now(), track="xp", to=3)])
    assert sorted(await titles(client, keys.server, "bo")) == ["First 2", "Second 3"]
