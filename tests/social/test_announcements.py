"""Announcements (issue 17 point 3): to an app, a community or a competition, through the inbox and the
live channel, as each player's notification preferences allow; scheduled, edited, withdrawn."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import NamedTuple

import httpx
import sqlalchemy as sa
import websockets
from fastapi import FastAPI

from questline.announcements import service as announcements
from questline.announcements import tasks as announcement_tasks
from questline.kit.clock import ManualClock
from questline.kit.db import unit_of_work
from questline.kit.jobs import Scheduler
from questline.kit.runtime import Runtime
from questline.notifications import service as notifications
from questline.relay import service as relay
from tests.conftest import Factory, problem
from tests.delivery.test_realtime import _recv, _subscribe, served
from tests.notifications.helpers import channels_to, contacts, smtp_server
from tests.social.helpers import community


async def inbox(client: httpx.AsyncClient, headers: dict[str, str], player: str) -> list[dict[str, object]]:
    resp = await client.get(f"/v1/players/{player}/notifications", headers=headers)
    assert resp.status_code == 200, resp.text
    return [n for n in resp.json()["items"] if n["type"] == "announcement"]


async def test_an_announcement_honours_preferences_and_quiet_hours(
        runtime: Runtime, engine: FastAPI, client: httpx.AsyncClient, factory: Factory, clock: ManualClock) -> None:
    clock.set(datetime(2026, 3, 11, 4, 30, tzinfo=UTC))  # 00:30 in New York
    room = await community(client, factory, members=("alice", "bob", "kai"))
    keys = room.keys
    with smtp_server() as box:
        channels_to(runtime, smtp_port=box.port)
        # bob wants no announcements in the app; kai wants them by e-mail, but not at night (New York).
        resp = await client.put("/v1/players/bob/notification-preferences", headers=keys.server,
                                json={"types": {"announcement": {"in_app": False}}})
        assert resp.status_code == 200, resp.text
        await contacts(client, keys, "kai", timezone="America/New_York", email="kai@example.com")
        resp = await client.put("/v1/players/kai/notification-preferences", headers=keys.server, json={
            "defaults": {"email": True}, "quiet_hours": {"start": "22:00", "end": "07:00"}})
        assert resp.status_code == 200, resp.text
        templated = await client.put("/v1/notification-templates/announcement/en", headers=keys.server,
                                     json={"subject": "[Owls] {{ title }}", "text": "{{ body }}"})
        assert templated.status_code == 200, templated.text
        mod = room.tokens["mod"]["Authorization"].removeprefix("Bearer ")
        await relay.prepare(runtime, from_head=True)
        async with served(engine) as host, websockets.connect(f"ws://{host}/v1/realtime?token={mod}") as ws:
            assert (await _subscribe(ws, f"announcements:{room.channel}"))["type"] == "subscribed"
            made = await client.post("/v1/announcements", headers=room.tokens["mod"], json={
                "target": {"kind": "community", "id": "night-owls"}, "title": "Raid tonight",
                "body": "Meet at the gate at nine."})
            assert made.status_code == 201, made.text
            out = made.json()
            assert out["status"] == "sent" and out["recipients"] == 3 and out["author"] == "player:mod"
            assert out["target"] == {"kind": "community", "id": room.community_id}
            await relay.drain(runtime)
            frame = await _recv(ws)
            assert frame["data"]["type"] == "announcement.published"
            assert frame["data"]["data"]["announcement"]["title"] == "Raid tonight"
        for player in ("alice", "kai", "mod"):
            [entry] = await inbox(client, keys.server, player)
            assert entry["title"] == "[Owls] Raid tonight" and entry["body"] == "Meet at the gate at nine."
        assert await inbox(client, keys.server, "bob") == []
        assert await inbox(client, keys.server, "carol") == []  # not a member
        async with unit_of_work(runtime.sessions) as session:
            [held] = await notifications.deliveries_of(session, keys.app_id, "kai")
        assert held["type"] == "announcement" and held["send_after"] == datetime(2026, 3, 11, 11, 0, tzinfo=UTC)
        assert await notifications.process_due(runtime) == 0 and box.received == []
        clock.set(datetime(2026, 3, 11, 11, 0, tzinfo=UTC))
        assert await notifications.process_due(runtime) == 1
        assert box.received[0]["Subject"] == "[Owls] Raid tonight"


async def test_who_may_announce_to_what(client: httpx.AsyncClient, factory: Factory) -> None:
    room = await community(client, factory)
    body = {"title": "Hi", "body": "Hello"}
    problem(await client.post("/v1/announcements", headers=room.tokens["alice"], json={
        "target": {"kind": "community", "id": room.community_id}, **body}), 403, "announcer_required")
    problem(await client.post("/v1/announcements", headers=room.tokens["mod"], json={
        "target": {"kind": "app"}, **body}), 403, "announcer_required")
    problem(await client.post("/v1/announcements", headers=room.keys.server, json={
        "target": {"kind": "community"}, **body}), 422)
    problem(await client.post("/v1/announcements", headers=room.keys.server, json={
        "target": {"kind": "community", "id": "nope"}, **body}), 404, "community_not_found")
    problem(await client.post("/v1/announcements", headers=room.keys.server, json={
        "target": {"kind": "app"}, "title": "Hi", "body": "x", "send_at": "2031-01-01T00:00:00"}), 422)
    admin = await factory.admin(room.keys.org_id)
    made = await client.post("/v1/announcements", headers=admin.headers(room.keys.app_id),
                             json={"target": {"kind": "app"}, **body})
    assert made.status_code == 201 and made.json()["recipients"] == 4, made.text  # mod, alice, bob, carol
    # A community admin reads and changes only their community's announcements.
    problem(await client.get(f"/v1/announcements/{made.json()['id']}", headers=room.tokens["mod"]), 404,
            "announcement_not_found")
    listed = (await client.get("/v1/announcements?target_kind=app", headers=room.keys.server)).json()
    assert [a["id"] for a in listed["items"]] == [made.json()["id"]]


async def test_edits_and_withdrawals_after_sending_follow_into_the_inbox(
        runtime: Runtime, client: httpx.AsyncClient, factory: Factory) -> None:
    room = await community(client, factory)
    keys = room.keys
    made = (await client.post("/v1/announcements", headers=keys.server, json={
        "target": {"kind": "community", "id": room.community_id}, "title": "Maintenance",
        "body": "Down at 10:00."})).json()
    url = f"/v1/announcements/{made['id']}"
    await client.post("/v1/players/alice/notifications/read-all", headers=keys.server)
    edited = await client.patch(url, headers=room.tokens["mod"], json={"body": "Down at 11:00 instead."})
    assert edited.status_code == 200 and edited.json()["version"] == 2, edited.text
    [entry] = await inbox(client, keys.server, "alice")
    assert entry["body"] == "Down at 11:00 instead." and entry["title"] == "Maintenance"
    assert entry["status"] == "read"  # an edit keeps what the player did with it
    problem(await client.patch(url, headers=keys.server, json={"send_at": "2031-01-01T00:00:00Z"}), 409,
            "announcement_sent")
    problem(await client.patch(url, headers=room.tokens["alice"], json={"body": "hacked"}), 404,
            "announcement_not_found")
    withdrawn = await client.post(f"{url}/withdraw", headers=keys.server)
    assert withdrawn.status_code == 200 and withdrawn.json()["status"] == "withdrawn"
    for player in ("alice", "bob", "mod"):
        assert await inbox(client, keys.server, player) == []
    problem(await client.post(f"{url}/withdraw", headers=keys.server), 409, "announcement_withdrawn")
    problem(await client.patch(url, headers=keys.server, json={"title": "again"}), 409, "announcement_withdrawn")
    types = [m.type for m in await relay_messages(runtime, keys.app_id)]
    assert [t for t in types if t.startswith("announcement.")] == [
        "announcement.published", "announcement.updated", "announcement.withdrawn"]


class _Typed(NamedTuple):
    type: str


async def relay_messages(runtime: Runtime, app_id: str) -> list[_Typed]:
    """This app's outbox messages in order (the shared PostgreSQL database holds every test's)."""
    from questline.pipeline.models import OutboxMessage as outbox
    async with unit_of_work(runtime.sessions) as session:
        rows = await session.execute(sa.select(outbox.type).where(outbox.app_id == app_id).order_by(outbox.seq))
    return [_Typed(t) for (t,) in rows]


async def test_a_scheduled_announcement_goes_out_once_even_with_two_schedulers(
        runtime: Runtime, client: httpx.AsyncClient, factory: Factory, clock: ManualClock) -> None:
    # Its own day: job claims are per job and period, shared by every test on one database.
    clock.set(datetime(2030, 7, 1, 9, 0, tzinfo=UTC))
    room = await community(client, factory)
    keys = room.keys
    made = (await client.post("/v1/announcements", headers=keys.server, json={
        "target": {"kind": "community", "id": room.community_id}, "title": "Season 2",
        "body": "Starts at ten.", "send_at": "2030-07-01T10:00:00Z"})).json()
    assert made["status"] == "scheduled" and made["sent_at"] is None
    withdrawn = (await client.post("/v1/announcements", headers=keys.server, json={
        "target": {"kind": "community", "id": room.community_id}, "title": "Never", "body": "Never sent.",
        "send_at": "2030-07-01T10:00:00Z"})).json()
    assert (await client.post(f"/v1/announcements/{withdrawn['id']}/withdraw", headers=keys.server)).status_code == 200
    moved = await client.patch(f"/v1/announcements/{made['id']}", headers=keys.server,
                               json={"send_at": "2030-07-01T10:30:00Z"})
    assert moved.status_code == 200 and moved.json()["status"] == "scheduled"
    assert await inbox(client, keys.server, "alice") == []

    other = Runtime.build(runtime.settings, clock)  # a second process: its own engine and pool
    try:
        def scheduler(rt: Runtime, name: str) -> Scheduler:
            made = Scheduler(rt.sessions, rt.clock, worker_name=name)
            announcement_tasks.register_jobs(made, rt)
            return made

        first, second = scheduler(runtime, "one"), scheduler(other, "two")
        clock.set(datetime(2030, 7, 1, 10, 0, 5, tzinfo=UTC))  # the first time, not yet due (moved)
        await asyncio.gather(first.tick(), second.tick())
        assert await inbox(client, keys.server, "alice") == []
        clock.set(datetime(2030, 7, 1, 10, 30, 5, tzinfo=UTC))
        ran = await asyncio.gather(first.tick(), second.tick())
        assert sum("announcements.send" in r for r in ran) == 1
        # The conditional update alone also keeps it once: the service called in parallel, outside the job.
        extra = await client.post("/v1/announcements", headers=keys.server, json={
            "target": {"kind": "community", "id": room.community_id}, "title": "Extra", "body": "Once.",
            "send_at": "2030-07-01T10:40:00Z"})
        assert extra.status_code == 201, extra.text
        clock.set(datetime(2030, 7, 1, 10, 40, 5, tzinfo=UTC))

        async def send(rt: Runtime) -> int:
            async with unit_of_work(rt.sessions) as session:
                return await announcements.send_due(session, rt, clock.now())
        assert sorted(await asyncio.gather(send(runtime), send(other))) == [0, 1]
    finally:
        await other.close()
    for player in ("alice", "bob", "mod"):
        assert [e["title"] for e in await inbox(client, keys.server, player)] == ["Extra", "Season 2"]
    out = (await client.get(f"/v1/announcements/{made['id']}", headers=keys.server)).json()
    assert out["status"] == "sent" and out["recipients"] == 3
    async with unit_of_work(runtime.sessions) as session:
        count = (await session.execute(sa.text("SELECT count(*) FROM notifications WHERE app_id = :a AND "
                                               "type = 'announcement'"), {"a": keys.app_id})).scalar_one()
    assert count == 6


async def test_an_announcement_is_live_in_the_players_inbox_and_leaves_it_when_withdrawn(
        runtime: Runtime, engine: FastAPI, client: httpx.AsyncClient, factory: Factory) -> None:
    room = await community(client, factory)
    alice = room.tokens["alice"]["Authorization"].removeprefix("Bearer ")
    async with served(engine) as host, websockets.connect(f"ws://{host}/v1/realtime?token={alice}") as ws:
        assert (await _subscribe(ws, "player:alice"))["type"] == "subscribed"
        made = (await client.post("/v1/announcements", headers=room.keys.server, json={
            "target": {"kind": "community", "id": room.community_id}, "title": "Live", "body": "Now."})).json()
        created = await _recv(ws)
        assert created["data"]["type"] == "notification.created"
        assert created["data"]["data"]["notification"]["type"] == "announcement"
        assert created["data"]["data"]["notification"]["title"] == "Live" and created["data"]["data"]["unread"] == 1
        await client.post(f"/v1/announcements/{made['id']}/withdraw", headers=room.keys.server)
        gone = await _recv(ws)
        assert gone["data"]["type"] == "notification.unread" and gone["data"]["data"] == {"unread": 0}
