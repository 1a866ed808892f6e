"""Announcements in the console, on SQLite and PostgreSQL: one to a community sent now, one to the app
scheduled at a UTC time, edited (words and time) and withdrawn; bad input shows the API's problem and
changes nothing; a viewer and a forged form are refused."""

from __future__ import annotations

import re

import httpx
from fastapi import FastAPI

from questline.tenancy.schemas import Role
from tests.conftest import Factory
from tests.console.helpers import Console, text_of, walk_pages
from tests.social.helpers import community


def listed(html: str) -> list[str]:
    return re.findall(r'<tr id="ann-([^"]+)"', html)


async def stored(client: httpx.AsyncClient, server: dict[str, str]) -> list[dict[str, object]]:
    items: list[dict[str, object]] = (await client.get("/v1/announcements", headers=server)).json()["items"]
    return items


async def test_announcements_are_made_edited_and_withdrawn(engine: FastAPI, client: httpx.AsyncClient,
                                                           factory: Factory) -> None:
    room = await community(client, factory)
    keys = room.keys
    console = await Console(client, keys.app_id).sign_in(await factory.admin(keys.org_id, Role.ADMIN))
    empty = await console.get("/announcements")
    assert empty.status_code == 200 and "No announcement yet" in empty.text

    now = await console.post("/announcements", {"kind": "community", "target_id": room.community_id,
                                                "title": "Raid tonight", "body": "Meet at nine.", "send_at": ""})
    assert now.status_code == 200 and "“Raid tonight” is sent." in now.text
    [sent] = await stored(client, keys.server)
    assert (sent["status"], sent["target"], sent["recipients"]) == (
        "sent", {"kind": "community", "id": room.community_id}, 3)
    inbox = (await client.get("/v1/players/alice/notifications", headers=room.tokens["alice"])).json()
    assert "Raid tonight" in str(inbox)

    later = await console.post("/announcements", {"kind": "app", "target_id": "", "title": "Season two",
                                                  "body": "Soon.", "send_at": "2030-01-31T18:00"})
    assert later.status_code == 200 and "“Season two” is scheduled." in later.text
    scheduled = next(a for a in await stored(client, keys.server) if a["title"] == "Season two")
    assert scheduled["status"] == "scheduled" and str(scheduled["send_at"]).startswith("2030-01-31T18:00")
    assert listed(later.text) == [scheduled["id"], sent["id"]]
    assert "2030-01-31T18:00" in text_of(later.text, f"ann-{scheduled['id']}")

    # Bad input: the API's (or the form's) problem, the words kept, nothing stored.
    for data, status, code in (
            ({"kind": "community", "target_id": "", "title": "x", "body": "y"}, 422, "validation"),
            ({"kind": "app", "title": "x", "body": "y", "send_at": "tomorrow"}, 422, "invalid_send_at"),
            ({"kind": "community", "target_id": "nowhere", "title": "x", "body": "y"}, 404, "community_not_found")):
        bad = await console.post("/announcements", data)
        assert bad.status_code == status and code in bad.text, bad.text
    assert len(await stored(client, keys.server)) == 2

    # A viewer reads the list but may not announce, edit or withdraw; a forged form is refused.
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=engine), base_url="http://questline.test") as other:
        viewer = await Console(other, keys.app_id).sign_in(await factory.admin(keys.org_id, Role.VIEWER))
        assert listed((await viewer.get("/announcements")).text) == [scheduled["id"], sent["id"]]
        for path, data in (("/announcements", {"kind": "app", "title": "mine", "body": "mine"}),
                           (f"/announcements/{scheduled['id']}", {"action": "save", "title": "mine", "body": "m"}),
                           (f"/announcements/{sent['id']}", {"action": "withdraw"})):
            assert (await viewer.post(path, data)).status_code == 403
    forged = await client.post(f"{console.base}/announcements/{sent['id']}",
                               data={"action": "withdraw", "csrf": "forged"})
    assert forged.status_code == 403
    assert {a["status"] for a in await stored(client, keys.server)} == {"sent", "scheduled"}

    edited = await console.post(f"/announcements/{scheduled['id']}", {
        "action": "save", "title": "Season two!", "body": "In January.", "send_at": "2030-02-01T09:30"})
    assert edited.status_code == 200 and "save done" in edited.text
    got = (await client.get(f"/v1/announcements/{scheduled['id']}", headers=keys.server)).json()
    assert (got["title"], got["body"]) == ("Season two!", "In January.")
    assert got["send_at"].startswith("2030-02-01T09:30") and got["status"] == "scheduled"
    reworded = await console.post(f"/announcements/{sent['id']}", {"action": "save", "title": "Raid at ten",
                                                                    "body": "Meet at ten."})
    assert reworded.status_code == 200
    assert (await client.get(f"/v1/announcements/{sent['id']}", headers=keys.server)).json()["title"] == "Raid at ten"

    withdrawn = await console.post(f"/announcements/{sent['id']}", {"action": "withdraw"})
    assert withdrawn.status_code == 200 and "withdraw done" in withdrawn.text
    assert (await client.get(f"/v1/announcements/{sent['id']}", headers=keys.server)).json()["status"] == "withdrawn"
    assert f'action="/console/apps/{keys.app_id}/announcements/{sent["id"]}"' not in withdrawn.text
    again = await console.post(f"/announcements/{sent['id']}", {"action": "withdraw"})
    assert again.status_code == 409 and "announcement_withdrawn" in again.text


async def test_the_announcements_list_pages_forward_and_back(client: httpx.AsyncClient, factory: Factory) -> None:
    keys = await factory.app()
    made = []
    for n in range(57):
        answer = await client.post("/v1/announcements", headers={**keys.server, "Idempotency-Key": f"page-{n}"},
                                   json={"target": {"kind": "app"}, "title": f"Notice {n}", "body": "Soon.",
                                         "send_at": "2099-01-01T00:00:00Z"})
        assert answer.status_code == 201, answer.text
        made.append(answer.json()["id"])
    console = await Console(client, keys.app_id).sign_in(await factory.admin(keys.org_id, Role.VIEWER))
    pages = await walk_pages(client, console.base + "/announcements", r'<tr id="ann-([^"]+)"')
    assert [len(p) for p in pages] == [50, 7]
    everything = [a for p in pages for a in p]
    assert len(set(everything)) == len(everything) == 57 and set(everything) == set(made)  # no row twice, none lost
    first = (await console.get("/announcements")).text
    assert 'rel="next">Next page</a>' in first and 'rel="prev"' not in first
    assert 'aria-label="Pages of announcements"' in first
