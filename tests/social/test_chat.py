"""Chat (issue 17 point 4): rooms per community and competition on the live channels, members only,
limits per player, moderation (delete, mute, ban, word filter, reports) and erasure with the player."""

from __future__ import annotations

import httpx
import orjson
import websockets
from fastapi import FastAPI

from questline.kit.clock import ManualClock
from questline.kit.runtime import Runtime
from questline.relay import service as relay
from tests.competitions.helpers import competition, create, join
from tests.conftest import Factory, problem
from tests.delivery.test_realtime import _recv, _subscribe, served
from tests.social.helpers import community, post, posted, rows


async def test_a_reader_recovers_the_rooms_messages_after_a_reconnect(
        runtime: Runtime, engine: FastAPI, client: httpx.AsyncClient, factory: Factory) -> None:
    room = await community(client, factory)
    alice = room.tokens["alice"]["Authorization"].removeprefix("Bearer ")
    live = f"chat:{room.channel}"
    await relay.prepare(runtime, from_head=True)
    async with served(engine) as host:
        async with websockets.connect(f"ws://{host}/v1/realtime?token={alice}") as ws:
            hello = await _subscribe(ws, live)
            assert hello["type"] == "subscribed" and hello["offset"] == 0
            first = posted(await post(client, room, "bob", "hi all"))
            await relay.drain(runtime)
            frame = await _recv(ws)
            assert frame["offset"] == 1 and frame["data"]["type"] == "chat.message"
            assert frame["data"]["data"]["message"] == {**first, "created_at": frame["data"]["data"]["message"][
                "created_at"]} and first["body"] == "hi all" and first["player_id"] == "bob"
            last, epoch = frame["offset"], frame["epoch"]
        # Away: three messages (one through the server key for a player) and a deletion.
        later = [posted(await post(client, room, "bob", f"message {n}")) for n in (2, 3)]
        resp = await client.post(f"/v1/chat/{room.channel}/messages", headers=room.keys.server,
                                 json={"body": "from the game server", "player_id": "mod"})
        later.append(posted(resp))
        assert (await client.delete(f"/v1/chat/{room.channel}/messages/{later[0]['id']}",
                                    headers=room.tokens["bob"])).status_code == 204
        await relay.drain(runtime)
        async with websockets.connect(f"ws://{host}/v1/realtime?token={alice}") as ws:
            hello = await _subscribe(ws, live, offset=last, epoch=epoch)
            assert hello["recovered"] is True and hello["offset"] == 5
            missed = [await _recv(ws) for _ in range(4)]
            assert [f["offset"] for f in missed] == [2, 3, 4, 5]
            assert [f["data"]["type"] for f in missed] == ["chat.message"] * 3 + ["chat.deleted"]
            assert [f["data"]["data"]["message"]["body"] for f in missed[:3]] == [
                "message 2", "message 3", "from the game server"]
            assert missed[3]["data"]["data"] == {"room": room.channel, "message_id": later[0]["id"]}
            # A chat message goes to the room only, not to its author's own channel.
            bob = room.tokens["bob"]["Authorization"].removeprefix("Bearer ")
        async with websockets.connect(f"ws://{host}/v1/realtime?token={bob}") as ws:
            assert (await _subscribe(ws, "player:bob"))["offset"] == 0
    # The stored history, newest first, with cursor paging; the deleted message has no text.
    page = (await client.get(f"/v1/chat/{room.channel}/messages?limit=2", headers=room.tokens["alice"])).json()
    assert [m["body"] for m in page["items"]] == ["from the game server", "message 3"]
    rest = (await client.get(f"/v1/chat/{room.channel}/messages?limit=2&cursor={page['next_cursor']}",
                             headers=room.tokens["alice"])).json()
    assert [m["body"] for m in rest["items"]] == [None, "hi all"] and rest["next_cursor"] is None
    assert rest["items"][0]["deleted_at"] is not None
    # Slugs name the same room over HTTP.
    by_slug = (await client.get("/v1/chat/community:night-owls/messages?limit=1", headers=room.keys.server)).json()
    assert by_slug["items"][0]["id"] == later[-1]["id"]


async def test_only_members_and_entrants_read_and_write(
        runtime: Runtime, engine: FastAPI, client: httpx.AsyncClient, factory: Factory) -> None:
    room = await community(client, factory)
    problem(await post(client, room, "carol", "let me in"), 403, "chat_members_only")
    problem(await client.get(f"/v1/chat/{room.channel}/messages", headers=room.tokens["carol"]), 403,
            "chat_members_only")
    problem(await client.get(f"/v1/chat/{room.channel}/messages", headers=room.keys.client), 403)
    carol = room.tokens["carol"]["Authorization"].removeprefix("Bearer ")
    async with served(engine) as host, websockets.connect(f"ws://{host}/v1/realtime?token={carol}") as ws:
        refused = await _subscribe(ws, f"chat:{room.channel}")
        assert refused["type"] == "error" and refused["code"] == "chat_members_only"
        refused = await _subscribe(ws, f"announcements:{room.channel}")
        assert refused["type"] == "error" and refused["code"] == "channel_forbidden"
        assert (await _subscribe(ws, "announcements:app"))["type"] == "subscribed"
    # The server key posts only for a member, and names the player.
    problem(await client.post(f"/v1/chat/{room.channel}/messages", headers=room.keys.server,
                              json={"body": "x", "player_id": "carol"}), 403, "chat_members_only")
    problem(await client.post(f"/v1/chat/{room.channel}/messages", headers=room.keys.server, json={"body": "x"}),
            422, "player_id_required")
    # A member who left is out again.
    left = await client.post(f"/v1/communities/{room.community_id}/members/bob/leave", headers=room.keys.server)
    assert left.status_code == 200, left.text
    problem(await post(client, room, "bob", "still here?"), 403, "chat_members_only")
    # Unknown rooms and malformed ones.
    problem(await post(client, room, "alice", "x", channel="community:nope"), 404, "community_not_found")
    problem(await post(client, room, "alice", "x", channel="competition:cmp_nope"), 404, "competition_not_found")
    problem(await post(client, room, "alice", "x", channel="guild:abc"), 422)
    # A competition's room: its entrants only.
    cid = (await create(client, room.keys, competition("2026-03-10T13:00:00Z", "2026-03-10T15:00:00Z")))["id"]
    assert (await join(client, room.keys, cid, "alice")).status_code in (200, 201)
    posted(await post(client, room, "alice", "good luck", channel=f"competition:{cid}"))
    problem(await post(client, room, "bob", "me too", channel=f"competition:{cid}"), 403, "chat_members_only")
    assert [r["player_id"] for r in await rows(runtime, "chat_messages", room.keys.app_id)] == ["alice"]


async def test_muted_and_banned_players_are_refused_until_their_time_is_up(
        client: httpx.AsyncClient, factory: Factory, clock: ManualClock) -> None:
    room = await community(client, factory)
    url = f"/v1/chat/{room.channel}/restrictions"
    # Only moderators: a plain member may not.
    problem(await client.put(f"{url}/bob", headers=room.tokens["alice"], json={"kind": "mute"}), 403,
            "moderator_required")
    muted = await client.put(f"{url}/bob", headers=room.tokens["mod"],
                             json={"kind": "mute", "seconds": 600, "reason": "cool down"})
    assert muted.status_code == 200 and muted.json()["kind"] == "mute", muted.text
    refused = problem(await post(client, room, "bob", "hey"), 403, "chat_muted")
    assert refused["until"] == muted.json()["until"]
    # Muted players still read.
    assert (await client.get(f"/v1/chat/{room.channel}/messages", headers=room.tokens["bob"])).status_code == 200
    clock.advance(seconds=601)
    posted(await post(client, room, "bob", "back"))
    # A ban (until lifted): neither writing nor reading.
    banned = await client.put(f"{url}/bob", headers=room.keys.server, json={"kind": "ban"})
    assert banned.status_code == 200 and banned.json()["until"] is None
    problem(await post(client, room, "bob", "hey"), 403, "chat_banned")
    problem(await client.get(f"/v1/chat/{room.channel}/messages", headers=room.tokens["bob"]), 403, "chat_banned")
    listed = (await client.get(url, headers=room.tokens["mod"])).json()
    assert [(r["player_id"], r["kind"]) for r in listed] == [("bob", "ban")]
    lifted = await client.delete(f"{url}/bob?kind=ban", headers=room.tokens["mod"])
    assert lifted.status_code == 204
    problem(await client.delete(f"{url}/bob?kind=ban", headers=room.tokens["mod"]), 404, "restriction_not_found")
    posted(await post(client, room, "bob", "free again"))
    problem(await client.put(f"{url}/mod", headers=room.tokens["mod"], json={"kind": "ban"}), 422,
            "cannot_restrict_self")
    problem(await client.put(f"{url}/bob", headers=room.tokens["mod"], json={"kind": "gag"}), 422)
    problem(await client.put(f"{url}/nobody", headers=room.tokens["mod"], json={"kind": "mute"}), 404,
            "player_not_found")


async def test_the_word_filter_the_size_limit_and_the_rate_per_player(
        runtime: Runtime, client: httpx.AsyncClient, factory: Factory, clock: ManualClock) -> None:
    room = await community(client, factory)
    settings = await client.put("/v1/chat/settings", headers=room.keys.server, json={
        "blocked_words": ["Darn", "heck no"], "max_length": 20, "rate_count": 3, "rate_seconds": 60})
    assert settings.status_code == 200 and settings.json()["blocked_words"] == ["darn", "heck no"], settings.text
    problem(await post(client, room, "alice", "oh DARN it"), 422, "blocked_word")
    problem(await post(client, room, "alice", "well, heck no!"), 422, "blocked_word")
    problem(await post(client, room, "alice", "x" * 21), 422, "message_too_long")
    problem(await client.put("/v1/chat/settings", headers=room.keys.server, json={"max_length": 0}), 422)
    problem(await client.put("/v1/chat/settings", headers=room.tokens["mod"], json={}), 403)
    for text in ("darnation is fine", "two", "three"):
        posted(await post(client, room, "alice", text))
    limited = await post(client, room, "alice", "four")
    problem(limited, 429, "chat_rate_limited")
    assert 1 <= int(limited.headers["retry-after"]) <= 60
    posted(await post(client, room, "bob", "others still post"))
    clock.advance(seconds=61)
    posted(await post(client, room, "alice", "four"))
    assert len(await rows(runtime, "chat_messages", room.keys.app_id)) == 5


async def test_reports_reach_the_moderation_queue_and_a_moderators_action_resolves_them(
        client: httpx.AsyncClient, factory: Factory) -> None:
    room = await community(client, factory, members=("alice", "bob", "dan"))
    rude = posted(await post(client, room, "bob", "you all stink"))
    url = f"/v1/chat/{room.channel}/messages/{rude['id']}/reports"
    first = await client.post(url, headers=room.tokens["alice"], json={"reason": "insult"})
    assert first.status_code == 201 and first.json()["status"] == "open", first.text
    assert (await client.post(url, headers=room.tokens["alice"], json={"reason": "again"})).status_code == 200
    assert (await client.post(url, headers=room.tokens["dan"], json={"reason": "rude"})).status_code == 201
    problem(await client.post(url, headers=room.tokens["bob"], json={"reason": "me"}), 422, "own_message")
    problem(await client.post(url, headers=room.tokens["carol"], json={"reason": "x"}), 403, "chat_members_only")
    # The queue: the community's admin sees their room's; plain players see none.
    queue = (await client.get("/v1/chat/reports?status=open", headers=room.tokens["mod"])).json()
    assert [(r["player_id"], r["author_id"]) for r in queue["items"]] == [("alice", "bob"), ("dan", "bob")]
    problem(await client.get("/v1/chat/reports", headers=room.tokens["alice"]), 403, "moderator_required")
    problem(await client.post(f"/v1/chat/reports/{first.json()['id']}/resolve", headers=room.tokens["alice"],
                              json={"action": "delete"}), 403, "moderator_required")
    # The moderator deletes the message: both reports resolve.
    done = await client.post(f"/v1/chat/reports/{first.json()['id']}/resolve", headers=room.tokens["mod"],
                             json={"action": "delete"})
    assert done.status_code == 200 and done.json()["status"] == "resolved" and done.json()["action"] == "delete"
    assert (await client.get("/v1/chat/reports?status=open", headers=room.keys.server)).json()["items"] == []
    history = (await client.get(f"/v1/chat/{room.channel}/messages", headers=room.tokens["alice"])).json()
    assert history["items"][0]["body"] is None
    problem(await client.post(f"/v1/chat/reports/{first.json()['id']}/resolve", headers=room.tokens["mod"],
                              json={"action": "dismiss"}), 409, "report_resolved")
    # A report resolved by muting the author: the author is muted.
    again = posted(await post(client, room, "bob", "still stinky"))
    report = await client.post(f"/v1/chat/{room.channel}/messages/{again['id']}/reports",
                               headers=room.tokens["alice"], json={"reason": "again"})
    muted = await client.post(f"/v1/chat/reports/{report.json()['id']}/resolve", headers=room.keys.server,
                              json={"action": "mute", "seconds": 3600})
    assert muted.json()["action"] == "mute"
    problem(await post(client, room, "bob", "hello?"), 403, "chat_muted")
    # A moderator deleting a reported message directly resolves its reports too.
    third = posted(await post(client, room, "dan", "buy cheap gold"))
    await client.post(f"/v1/chat/{room.channel}/messages/{third['id']}/reports", headers=room.tokens["alice"],
                      json={"reason": "spam"})
    problem(await client.delete(f"/v1/chat/{room.channel}/messages/{third['id']}", headers=room.tokens["alice"]),
            403, "moderator_required")
    assert (await client.delete(f"/v1/chat/{room.channel}/messages/{third['id']}",
                                headers=room.tokens["mod"])).status_code == 204
    resolved = (await client.get("/v1/chat/reports", headers=room.keys.server)).json()["items"]
    assert [r["action"] for r in resolved] == ["delete", "delete", "mute", "delete"]
    problem(await client.post("/v1/chat/reports/chr_01JAAAAAAAAAAAAAAAAAAAAAAA/resolve", headers=room.keys.server,
                              json={"action": "dismiss"}), 404, "report_not_found")


async def test_erasing_a_player_erases_their_messages_and_reports(
        runtime: Runtime, client: httpx.AsyncClient, factory: Factory) -> None:
    room = await community(client, factory)
    bobs = posted(await post(client, room, "bob", "bob was here"))
    alices = posted(await post(client, room, "alice", "alice too"))
    await client.post(f"/v1/chat/{room.channel}/messages/{bobs['id']}/reports", headers=room.tokens["alice"],
                      json={"reason": "about bob"})
    await client.post(f"/v1/chat/{room.channel}/messages/{alices['id']}/reports", headers=room.tokens["bob"],
                      json={"reason": "by bob"})
    await client.put(f"/v1/chat/{room.channel}/restrictions/bob", headers=room.keys.server, json={"kind": "mute"})
    exported = (await client.get("/v1/players/bob/export", headers=room.keys.server)).json()
    assert exported["areas"]["chat"]["chat_messages"][0]["body"] == "bob was here"
    erased = await client.delete("/v1/players/bob", headers=room.keys.server)
    assert erased.status_code == 200, erased.text
    app = room.keys.app_id
    assert [m["player_id"] for m in await rows(runtime, "chat_messages", app)] == ["alice"]
    assert await rows(runtime, "chat_reports", app) == []
    assert await rows(runtime, "chat_restrictions", app) == []
    outbox = await rows(runtime, "outbox", app)
    assert not any("bob was here" in orjson.dumps(r["payload"]).decode() for r in outbox if r["payload"])
