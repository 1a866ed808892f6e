"""Chat moderation in the console, on SQLite and PostgreSQL: the open reports show the message, its
author and the reporter; deleting, muting for N minutes, banning and dismissing act through the API;
the word filter is edited; a viewer and a forged form are refused and change nothing."""

from __future__ import annotations

import re
from datetime import datetime

import httpx
from fastapi import FastAPI

from questline.tenancy.schemas import Role
from tests.conftest import Factory
from tests.console.helpers import Console, text_of
from tests.social.helpers import Room, community, post, posted


def reports(html: str) -> list[str]:
    return re.findall(r'<tr id="report-([^"]+)"', html)


async def report(client: httpx.AsyncClient, room: Room, who: str, message_id: str, reason: str) -> str:
    made = await client.post(f"/v1/chat/{room.channel}/messages/{message_id}/reports", headers=room.tokens[who],
                             json={"reason": reason})
    assert made.status_code == 201, made.text
    return str(made.json()["id"])


async def test_reports_are_worked_from_the_console(engine: FastAPI, client: httpx.AsyncClient,
                                                   factory: Factory) -> None:
    room = await community(client, factory, members=("alice", "bob", "dan"))
    keys = room.keys
    spam = posted(await post(client, room, "bob", "buy cheap gold here"))
    rude = posted(await post(client, room, "dan", "you are all slow"))
    fine = posted(await post(client, room, "alice", "good game"))
    first = await report(client, room, "alice", spam["id"], "spam")
    second = await report(client, room, "bob", rude["id"], "rude")
    third = await report(client, room, "bob", fine["id"], "mistake")
    console = await Console(client, keys.app_id).sign_in(await factory.admin(keys.org_id, Role.ADMIN))
    listed = await console.get("/moderation")
    assert listed.status_code == 200 and reports(listed.text) == [first, second, third]
    row = text_of(listed.text, f"report-{first}")
    assert "buy cheap gold here" in row and "bob" in row and "alice" in row and "spam" in row

    # A viewer reads the queue's page but may not act; a form without its token is refused.
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=engine), base_url="http://questline.test") as other:
        viewer = await Console(other, keys.app_id).sign_in(await factory.admin(keys.org_id, Role.VIEWER))
        assert (await viewer.get("/moderation")).status_code == 200
        for path, data in ((f"/moderation/{first}", {"action": "delete"}),
                           ("/moderation/words", {"blocked_words": "gold"})):
            assert (await viewer.post(path, data)).status_code == 403
    forged = await client.post(f"{console.base}/moderation/{first}", data={"action": "delete", "csrf": "forged"})
    assert forged.status_code == 403
    still = (await client.get("/v1/chat/reports?status=open", headers=keys.server)).json()["items"]
    assert [r["id"] for r in still] == [first, second, third]

    bad = await console.post(f"/moderation/{second}", {"action": "mute", "minutes": "soon"})
    assert bad.status_code == 422 and "invalid_minutes" in bad.text
    deleted = await console.post(f"/moderation/{first}", {"action": "delete", "note": "spam"})
    assert deleted.status_code == 200 and reports(deleted.text) == [second, third]
    history = (await client.get(f"/v1/chat/{room.channel}/messages", headers=keys.server)).json()["items"]
    assert {m["id"]: m["body"] for m in history}[spam["id"]] is None
    muted = await console.post(f"/moderation/{second}", {"action": "mute", "minutes": "10"})
    assert muted.status_code == 200 and reports(muted.text) == [third]
    limits = (await client.get(f"/v1/chat/{room.channel}/restrictions", headers=keys.server)).json()
    [mute] = limits
    assert (mute["player_id"], mute["kind"]) == ("dan", "mute")
    span = datetime.fromisoformat(mute["until"]) - datetime.fromisoformat(mute["created_at"])
    assert span.total_seconds() == 600
    assert (await post(client, room, "dan", "sorry")).status_code == 403
    dismissed = await console.post(f"/moderation/{third}", {"action": "dismiss"})
    assert dismissed.status_code == 200 and reports(dismissed.text) == [] and "No report waits" in dismissed.text
    again = await console.post(f"/moderation/{third}", {"action": "ban", "minutes": "5"})
    assert again.status_code == 409 and "report_resolved" in again.text
    assert len((await client.get(f"/v1/chat/{room.channel}/restrictions", headers=keys.server)).json()) == 1


async def test_a_ban_for_minutes_and_the_word_filter(client: httpx.AsyncClient, factory: Factory) -> None:
    room = await community(client, factory)
    keys = room.keys
    message = posted(await post(client, room, "bob", "hello"))
    made = await report(client, room, "alice", message["id"], "abuse")
    console = await Console(client, keys.app_id).sign_in(await factory.admin(keys.org_id, Role.ADMIN))
    banned = await console.post(f"/moderation/{made}", {"action": "ban", "minutes": "60", "note": "abuse"})
    assert banned.status_code == 200 and reports(banned.text) == []
    [ban] = (await client.get(f"/v1/chat/{room.channel}/restrictions", headers=keys.server)).json()
    assert ban["kind"] == "ban" and ban["player_id"] == "bob"
    assert (datetime.fromisoformat(ban["until"]) - datetime.fromisoformat(ban["created_at"])).total_seconds() == 3600

    before = (await client.get("/v1/chat/settings", headers=keys.server)).json()
    saved = await console.post("/moderation/words", {"blocked_words": "Gold\n  scam \n\ngold"})
    assert saved.status_code == 200 and "The word filter is saved" in saved.text
    after = (await client.get("/v1/chat/settings", headers=keys.server)).json()
    assert after["blocked_words"] == ["gold", "scam"]
    assert {k: after[k] for k in ("max_length", "rate_count", "rate_seconds")} == {
        k: before[k] for k in ("max_length", "rate_count", "rate_seconds")}
    assert "gold\nscam</textarea>" in saved.text
    assert (await post(client, room, "alice", "free GOLD")).status_code == 422
    too_long = await console.post("/moderation/words", {"blocked_words": "x" * 65})
    assert too_long.status_code == 422
    assert (await client.get("/v1/chat/settings", headers=keys.server)).json()["blocked_words"] == ["gold", "scam"]


async def test_a_mute_and_a_ban_are_lifted_from_the_console(engine: FastAPI, client: httpx.AsyncClient,
                                                            factory: Factory) -> None:
    room = await community(client, factory, members=("alice", "bob", "dan"))
    keys = room.keys
    message = posted(await post(client, room, "dan", "you are all slow"))
    made = await report(client, room, "alice", message["id"], "rude")
    console = await Console(client, keys.app_id).sign_in(await factory.admin(keys.org_id, Role.ADMIN))
    muted = await console.post(f"/moderation/{made}", {"action": "mute"})  # until lifted
    assert muted.status_code == 200
    # The room's mutes and bans show after the mute, each with its Lift button.
    row = text_of(muted.text, "restrictions")
    assert "dan" in row and "mute" in row and "until lifted" in row
    banned = await client.put(f"/v1/chat/{room.channel}/restrictions/bob", headers=keys.server,
                              json={"kind": "ban", "reason": "abuse"})
    assert banned.status_code == 200
    listed = await console.get("/moderation", room=room.channel)
    assert 'id="restriction-mute-dan"' in listed.text and 'id="restriction-ban-bob"' in listed.text
    assert (await post(client, room, "dan", "sorry")).status_code == 403

    def held() -> list[tuple[str, str]]:
        return sorted((r["player_id"], r["kind"]) for r in restrictions.json())

    # A viewer sees the list but may not lift; a forged form and a bad room or kind change nothing.
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=engine), base_url="http://questline.test") as other:
        viewer = await Console(other, keys.app_id).sign_in(await factory.admin(keys.org_id, Role.VIEWER))
        seen = await viewer.get("/moderation", room=room.channel)
        assert seen.status_code == 200 and 'id="restriction-mute-dan"' not in seen.text
        refused = await viewer.post("/moderation/lift", {"room": room.channel, "player_id": "dan", "kind": "mute"})
        assert refused.status_code == 403 and "role" in refused.text.lower()
    forged = await client.post(f"{console.base}/moderation/lift", data={
        "room": room.channel, "player_id": "dan", "kind": "mute", "csrf": "forged"})
    assert forged.status_code == 403
    for data, code in (({"room": "lobby", "player_id": "dan", "kind": "mute"}, "unknown_room"),
                       ({"room": room.channel, "player_id": "dan", "kind": "silence"}, "unknown_kind"),
                       ({"room": room.channel, "player_id": "alice", "kind": "mute"}, "restriction_not_found")):
        bad = await console.post("/moderation/lift", data)
        assert bad.status_code in (404, 422) and code in bad.text, bad.text
    restrictions = await client.get(f"/v1/chat/{room.channel}/restrictions", headers=keys.server)
    assert held() == [("bob", "ban"), ("dan", "mute")]

    lifted = await console.post("/moderation/lift", {"room": room.channel, "player_id": "dan", "kind": "mute"})
    assert lifted.status_code == 200 and "dan&#39;s mute in" in lifted.text and "is lifted" in lifted.text
    assert 'id="restriction-mute-dan"' not in lifted.text and 'id="restriction-ban-bob"' in lifted.text
    assert (await post(client, room, "dan", "sorry")).status_code == 201  # he may post again
    unbanned = await console.post("/moderation/lift", {"room": room.channel, "player_id": "bob", "kind": "ban"})
    assert unbanned.status_code == 200 and "Nobody is muted or banned" in unbanned.text
    assert (await client.get(f"/v1/chat/{room.channel}/messages", headers=room.tokens["bob"])).status_code == 200
    restrictions = await client.get(f"/v1/chat/{room.channel}/restrictions", headers=keys.server)
    assert held() == []
    # Each lift is in the audit log, by the admin, naming the room and the player.
    owner = (await factory.admin(keys.org_id, Role.OWNER)).headers(keys.app_id)
    audit = (await client.get("/v1/audit", headers=owner, params={"limit": 200})).json()["items"]
    lifts = [e for e in audit if e["action"] == "chat_lift"]
    assert sorted(e["target"]["member"] for e in lifts) == ["bob", "dan"]
    assert {e["actor_kind"] for e in lifts} == {"admin"} and {e["target"]["channel"] for e in lifts} == {room.channel}
