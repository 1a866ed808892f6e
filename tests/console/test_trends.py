"""A stat added up over every player per period (GET /v1/stats/{stat}/totals) and its chart in the
console, on SQLite and PostgreSQL: a count stat of an event type is that event over time."""

from __future__ import annotations

import re

import httpx

from questline.kit.clock import ManualClock
from questline.kit.runtime import Runtime
from questline.tenancy.schemas import Role
from tests.conftest import Factory, problem
from tests.console.helpers import Console
from tests.pipeline.helpers import send, settle


async def test_a_count_stat_is_its_event_over_time(client: httpx.AsyncClient, factory: Factory, runtime: Runtime,
                                                   clock: ManualClock) -> None:
    keys = await factory.app()
    assert (await client.put("/v1/definitions/stat/runs", headers=keys.server,
                             json={"event_type": "run.done"})).is_success
    other = await factory.app("other")
    assert (await client.put("/v1/definitions/stat/runs", headers=other.server,
                             json={"event_type": "run.done"})).is_success
    n = 0
    for day, players in enumerate((["ana", "bo"], ["ana", "ana", "bo", "cy"], ["cy"])):
        if day:
            clock.advance(days=1)
        events = []
        for player in players:
            n += 1
            events.append({"id": f"r{n}", "player_id": player, "type": "run.done",
                           "timestamp": clock.now().isoformat()})
        assert (await send(client, keys, events)).status_code in (200, 202)
    assert (await send(client, other, [{"id": "x1", "player_id": "zed", "type": "run.done",
                                        "timestamp": clock.now().isoformat()}])).status_code in (200, 202)
    await settle(runtime)

    series = (await client.get("/v1/stats/runs/totals", headers=keys.server)).json()
    assert series["period"] == "day"
    assert [(p["total"], p["players"]) for p in series["items"]] == [(2, 2), (4, 3), (1, 1)]
    keys_in_order = [p["period_key"] for p in series["items"]]
    assert keys_in_order == sorted(keys_in_order) and all(len(k) == 10 for k in keys_in_order)
    latest = (await client.get("/v1/stats/runs/totals", headers=keys.server, params={"limit": 2})).json()
    assert [p["total"] for p in latest["items"]] == [4, 1]
    month = (await client.get("/v1/stats/runs/totals", headers=keys.server, params={"period": "month"})).json()
    assert sum(p["total"] for p in month["items"]) == 7
    problem(await client.get("/v1/stats/nothing/totals", headers=keys.server), 404, "definition_not_found")
    problem(await client.get("/v1/stats/runs/totals", headers=keys.server, params={"period": "year"}), 422)
    problem(await client.get("/v1/stats/runs/totals", headers=keys.server, params={"limit": 0}), 422)
    assert (await client.get("/v1/stats/runs/totals", headers=keys.client)).status_code in (401, 403)

    console = await Console(client, keys.app_id).sign_in(await factory.admin(keys.org_id, Role.VIEWER))
    page = await console.get("/trends", stat="runs", period="day")
    assert page.status_code == 200
    chart = re.search(r'<figure id="trend-chart">(.*?)</figure>', page.text, re.S)
    assert chart and chart.group(1).count("<circle") == 3 and ": 4</title>" in chart.group(1)
    assert "Nothing counted yet" not in page.text
    empty = await console.get("/trends")
    assert empty.status_code == 200 and "runs (count of run.done)" in empty.text
