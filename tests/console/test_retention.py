"""Weekly cohort retention from the event log (GET /v1/events/retention) and its heat table in the
console, on SQLite and PostgreSQL, for a crafted cohort."""

from __future__ import annotations

from datetime import timedelta

import httpx

from questline.kit.clock import ManualClock
from questline.kit.runtime import Runtime
from questline.tenancy.schemas import Role
from tests.conftest import Factory, problem
from tests.console.helpers import Console, text_of
from tests.pipeline.helpers import send, settle


async def test_weekly_cohorts_and_their_shares(client: httpx.AsyncClient, factory: Factory, runtime: Runtime,
                                               clock: ManualClock) -> None:
    keys, other = await factory.app(), await factory.app("other")
    # Each step is one week on from the clock's start; a cohort is named by its week's Monday (UTC).
    start = clock.now()
    monday = [(start - timedelta(days=start.weekday()) + timedelta(days=7 * k)).date().isoformat() for k in range(3)]
    weeks = (["ana", "bo", "cy", "ana"], ["ana", "bo", "di"], ["ana", "di"])
    n = 0
    for step, players in enumerate(weeks):
        if step:
            clock.advance(days=7)
        events = []
        for player in players:
            n += 1
            events.append({"id": f"e{n}", "player_id": player, "type": "app.opened",
                           "timestamp": clock.now().isoformat()})
        assert (await send(client, keys, events)).status_code in (200, 202)
    assert (await send(client, other, [{"id": "x1", "player_id": "zed", "type": "app.opened",
                                        "timestamp": clock.now().isoformat()}])).status_code in (200, 202)
    await settle(runtime)

    body = (await client.get("/v1/events/retention", headers=keys.server)).json()
    assert body == {"weeks": 8, "cohorts": [
        {"week": monday[0], "players": 3, "active": [3, 2, 1], "percent": [100.0, 66.7, 33.3]},
        {"week": monday[1], "players": 1, "active": [1, 1], "percent": [100.0, 100.0]},
    ]}
    # Two weeks back: ana's cohort (first seen earlier) is out, not re-dated to the window's start.
    two = (await client.get("/v1/events/retention", headers=keys.server, params={"weeks": 2})).json()
    assert [c["week"] for c in two["cohorts"]] == [monday[1]]
    assert (await client.get("/v1/events/retention", headers=other.server)).json()["cohorts"] == [
        {"week": monday[2], "players": 1, "active": [1], "percent": [100.0]}]

    problem(await client.get("/v1/events/retention", headers=keys.server, params={"weeks": 27}), 422)
    assert (await client.get("/v1/events/retention", headers=keys.client)).status_code in (401, 403)
    ana = await factory.player_token(keys, "ana")
    assert (await client.get("/v1/events/retention", headers=ana)).status_code in (401, 403)

    console = await Console(client, keys.app_id).sign_in(await factory.admin(keys.org_id, Role.VIEWER))
    page = await console.get("/retention", weeks="4")
    assert page.status_code == 200
    table = text_of(page.text, "retention")
    assert monday[0] in table and "66.7%" in table and "33.3%" in table
    assert 'class="heat-6" title="2 of 3"' in page.text and 'class="heat-10" title="1 of 1"' in page.text
