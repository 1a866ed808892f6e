"""A community's link analytics in the console, on SQLite and PostgreSQL: the community picked, totals,
the clicks and joins per day charted and tabled, the members' links tabled, the CSV downloaded through
the console; a viewer reads it too; a bad range or an unknown community shows the API's problem."""

from __future__ import annotations

import re

import httpx
from fastapi import FastAPI

from questline.kit.clock import ManualClock
from questline.tenancy.schemas import Role
from tests.communities.helpers import create, join
from tests.conftest import Factory
from tests.console.helpers import Console, text_of
from tests.links.helpers import click, click_id, visitor


async def test_link_analytics_by_day_and_member_with_csv(engine: FastAPI, client: httpx.AsyncClient,
                                                         factory: Factory, clock: ManualClock) -> None:
    keys = await factory.app()
    guild = await create(client, keys.server, redirect_url="https://play.example.com/join")
    await create(client, keys.server, slug="quiet-corner")
    lead = (await join(client, keys.server, "crypto-warriors", player_id="lead")).json()
    mine = f"/c/{keys.app_id}/crypto-warriors/{lead['member_code']}"
    async with visitor(engine, "198.51.100.7") as ann:
        ann_click = click_id(await click(ann, mine))
    async with visitor(engine, "203.0.113.5") as ben:
        await click(ben, mine)
        await click(ben, f"/c/{keys.app_id}/crypto-warriors")
    joined = await join(client, keys.server, "crypto-warriors", player_id="ann", click_id=ann_click)
    assert joined.status_code == 201 and joined.json()["referred_by"] == "lead"
    today = clock.now().date().isoformat()

    console = await Console(client, keys.app_id).sign_in(await factory.admin(keys.org_id, Role.ADMIN))
    picker = await console.get("/links")
    assert picker.status_code == 200 and "Crypto Warriors (crypto-warriors)" in picker.text
    assert "Quiet Corner (quiet-corner)" in picker.text and 'id="totals"' not in picker.text

    shown = await console.get("/links", community=guild["id"])
    assert shown.status_code == 200
    assert " ".join(text_of(shown.text, "totals").split()) == (
        "3 clicks, 2 visitors, 1 joins, conversion 50.0% (0 requests filtered out)")  # ben counted once a day
    assert '<svg class="chart"' in shown.text and f"{today[5:]}: 3</title>" in shown.text
    assert f"{today[5:]}: 1</title>" in shown.text  # the joins chart
    assert (today, "3", "2", "1") in re.findall(
        r"<tr><td>(\d{4}-\d\d-\d\d)</td><td>(\d+)</td><td>(\d+)</td><td>(\d+)</td>", shown.text)
    members = " ".join(text_of(shown.text, "by-member").split())
    assert f"lead {lead['member_code']} 2 2 1 50.0%" in members and "the community's own link 1 1 0 0.0%" in members

    csv_link = re.search(r'id="csv" href="([^"]+)"', shown.text)
    assert csv_link
    csv = await client.get(csv_link.group(1).replace("&amp;", "&"))
    assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
    assert "attachment" in csv.headers["content-disposition"]
    lines = csv.text.splitlines()
    assert lines[0].startswith("section,day,member_code,player_id,clicks")
    assert f"member,,{lead['member_code']},lead,2,2,,1,0.5000" in lines
    assert (await client.get(f"{console.base}/links.csv", params={"community": "nowhere"})).status_code == 404

    bad = await console.get("/links", community="crypto-warriors", first_day="2020-01-01", last_day=today)
    assert bad.status_code == 200 and "invalid_range" in bad.text and 'id="totals"' not in bad.text
    unknown = await console.get("/links", community="nowhere")
    assert "community_not_found" in unknown.text

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=engine), base_url="http://questline.test") as other:
        viewer = await Console(other, keys.app_id).sign_in(await factory.admin(keys.org_id, Role.VIEWER))
        seen = await viewer.get("/links", community="crypto-warriors")
        assert "3 clicks" in text_of(seen.text, "totals")
        assert (await other.get(f"{viewer.base}/links.csv", params={"community": "crypto-warriors"})).status_code == 200
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=engine), base_url="http://questline.test") as out:
        signed_out = await out.get(f"{console.base}/links.csv", params={"community": "crypto-warriors"})
        assert signed_out.status_code == 303 and signed_out.headers["location"].startswith("/console/login")
