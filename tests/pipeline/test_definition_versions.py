"""Definition history: every saved version is kept, listed newest first, readable by number."""

from __future__ import annotations

import httpx

from questline.tenancy.schemas import Role
from tests.conftest import Factory, problem


async def test_every_version_is_kept_and_readable(client: httpx.AsyncClient, factory: Factory) -> None:
    keys = await factory.app()
    bodies = [{"event_type": "enemy.killed"}, {"event_type": "enemy.killed", "periods": ["all"]},
              {"event_type": "boss.killed", "periods": ["all", "day"]}]
    for body in bodies:
        assert (await client.put("/v1/definitions/stat/kills", headers=keys.server, json=body)).is_success
    # Saving the same body again is no new version.
    assert (await client.put("/v1/definitions/stat/kills", headers=keys.server, json=bodies[2])).json()["version"] == 3
    listed = (await client.get("/v1/definitions/stat/kills/versions", headers=keys.server)).json()
    assert [v["version"] for v in listed["items"]] == [3, 2, 1]
    assert listed["items"][2]["body"]["event_type"] == "enemy.killed"
    assert listed["items"][0]["body"]["periods"] == ["all", "day"]
    first = await client.get("/v1/definitions/stat/kills/versions?limit=2", headers=keys.server)
    rest = await client.get("/v1/definitions/stat/kills/versions", headers=keys.server,
                            params={"limit": 2, "cursor": first.json()["next_cursor"]})
    assert [v["version"] for v in first.json()["items"] + rest.json()["items"]] == [3, 2, 1]
    two = (await client.get("/v1/definitions/stat/kills/versions/2", headers=keys.server)).json()
    assert two["version"] == 2 and two["body"]["periods"] == ["all"] and two["key"] == "kills"

    # A refused save keeps no version.
    problem(await client.put("/v1/definitions/stat/kills", headers=keys.server, json={"event_type": "x", "bogus": 1}),
            422, "invalid_definition")
    assert len((await client.get("/v1/definitions/stat/kills/versions", headers=keys.server)).json()["items"]) == 3

    problem(await client.get("/v1/definitions/stat/kills/versions/9", headers=keys.server), 404,
            "definition_version_not_found")
    problem(await client.get("/v1/definitions/stat/kills/versions/0", headers=keys.server), 422)
    problem(await client.get("/v1/definitions/stat/nope/versions", headers=keys.server), 404, "definition_not_found")
    problem(await client.get("/v1/definitions/spell/kills/versions", headers=keys.server), 404, "unknown_kind")
    problem(await client.get("/v1/definitions/stat/kills/versions?cursor=bad", headers=keys.server), 400,
            "invalid_cursor")

    # Another app sees none of it; a deleted definition takes its history along.
    other = await factory.app("other")
    problem(await client.get("/v1/definitions/stat/kills/versions/1", headers=other.server), 404)
    assert (await client.delete("/v1/definitions/stat/kills", headers=keys.server)).status_code == 204
    problem(await client.get("/v1/definitions/stat/kills/versions/1", headers=keys.server), 404)
    again = await client.put("/v1/definitions/stat/kills", headers=keys.server, json=bodies[0])
    assert again.json()["version"] == 1
    listed = (await client.get("/v1/definitions/stat/kills/versions", headers=keys.server)).json()
    assert [v["version"] for v in listed["items"]] == [1]


async def test_a_bundle_records_versions_and_a_viewer_may_read_them(client: httpx.AsyncClient,
                                                                    factory: Factory) -> None:
    keys = await factory.app()
    for name in ("Kills", "Kills v2"):
        bundle = {"definitions": {"stat": {"kills": {"event_type": "enemy.killed"}},
                                  "leaderboard": {"top": {"name": name, "event_type": "enemy.killed", "field": "data.n",
                                                          "operator": "sum"}}}}
        assert (await client.post("/v1/definitions:bulk", headers=keys.server, json=bundle)).is_success
    viewer = await factory.admin(keys.org_id, Role.VIEWER)
    listed = await client.get("/v1/definitions/leaderboard/top/versions", headers=viewer.headers(keys.app_id))
    assert [v["body"]["name"] for v in listed.json()["items"]] == ["Kills v2", "Kills"]
    stat = await client.get("/v1/definitions/stat/kills/versions", headers=keys.server)
    assert [v["version"] for v in stat.json()["items"]] == [1]
    refused = await client.get("/v1/definitions/leaderboard/top/versions", headers=keys.client)
    assert refused.status_code in (401, 403)
