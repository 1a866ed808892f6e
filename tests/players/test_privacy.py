"""Issue 10, point 24: a player's data is exported and erased through one registry that every
area declares into (``questline.mechanics.player_data``)."""

from __future__ import annotations

import asyncio

import httpx
import sqlalchemy as sa

import questline.models  # noqa: F401  (every table, for the coverage check)
from questline.kit.db import Base, unit_of_work
from questline.kit.privacy import NOT_PLAYER_COLUMNS, PLAYER_COLUMNS, PlayerDataRegistry, registry_of
from questline.kit.runtime import Runtime
from questline.mechanics import player_data
from questline.tenancy.schemas import Role
from tests.communities.helpers import create, join
from tests.conftest import Factory, problem
from tests.factories import balance, currency, grant, idem
from tests.leaderboards.helpers import board, define, play, player, ranks, scored
from tests.ledger.helpers import verify


def test_every_table_with_a_player_column_is_covered_by_an_area() -> None:
    covered = PlayerDataRegistry(player_data()).covered()
    with_player = {(table.name, column.name) for table in Base.metadata.tables.values()
                   for column in table.columns if column.name in PLAYER_COLUMNS}
    assert with_player - covered - NOT_PLAYER_COLUMNS == set(), "declare these in questline.mechanics.player_data()"
    for table, column in covered:  # and every declaration names a real column
        assert column in Base.metadata.tables[table].columns, (table, column)


async def rows_about(runtime: Runtime, app_id: str, player_id: str) -> dict[str, int]:
    """Rows of the app that still name the player, per table (read straight from the database)."""
    found = {}
    async with unit_of_work(runtime.sessions) as session:
        for table_name, column in PlayerDataRegistry(player_data()).covered():
            table = Base.metadata.tables[table_name]
            if "app_id" not in table.columns or column == "caller":
                continue
            count = (await session.execute(sa.select(sa.func.count()).select_from(table).where(
                table.c.app_id == app_id, table.c[column] == player_id))).scalar_one()
            if count and table_name != "player_token_epochs":
                found[f"{table_name}.{column}"] = int(count)
    return found


async def test_export_then_erase(client: httpx.AsyncClient, factory: Factory, runtime: Runtime) -> None:
    keys = await factory.app()
    await currency(client, keys)
    await define(client, keys, {"leaderboard": {"points": {"event_type": "match.end", "field": "data.points"}}})
    await player(client, keys, "alice", display_name="Alice A.", real_name="Alice Liddell", traits={"tier": "vip"})
    await player(client, keys, "bob")
    alice = await factory.player_token(keys, "alice")
    await play(client, keys, runtime, [scored("alice", 50, "2026-03-10T10:00:00Z"),
                                       scored("bob", 20, "2026-03-10T10:01:00Z")])
    await grant(client, keys, "alice", 100)
    spend = await client.post("/v1/ledger/spends", headers=idem(keys.server),
                              json={"player_id": "alice", "currency": "points", "amount": 30})
    assert spend.status_code == 201, spend.text
    await create(client, keys.server, slug="guild")
    assert (await join(client, alice, "guild")).status_code == 201
    assert (await client.put("/v1/players/alice/friends/bob", headers=keys.server)).status_code == 200
    assert ranks(await board(client, keys.server, "points")) == [(1, "alice", 50), (2, "bob", 20)]

    # Export: the server key and app admins only.
    problem(await client.get("/v1/players/alice/export", headers=alice), 403)
    problem(await client.get("/v1/players/alice/export", headers=keys.client), 403)
    viewer = await factory.admin(keys.org_id, Role.VIEWER)
    problem(await client.get("/v1/players/alice/export", headers=viewer.headers(keys.app_id)), 403)
    other = await factory.app()
    problem(await client.get("/v1/players/alice/export", headers=other.server), 404, "player_not_found")
    resp = await client.get("/v1/players/alice/export", headers=keys.server)
    assert resp.status_code == 200, resp.text
    areas = resp.json()["areas"]
    profile = areas["players"]["players"][0]
    assert (profile["display_name"], profile["real_name"], profile["traits"]) == ("Alice A.", "Alice Liddell",
                                                                                  {"tier": "vip"})
    assert {e["type"] for e in areas["players"]["events"]} == {"match.end"}
    assert [a["balance"] for a in areas["ledger"]["ledger_accounts.owner_id"]] == [70]
    assert [e["score"] for e in areas["leaderboards"]["leaderboard_entries"]] == [50]
    assert [m["status"] for m in areas["communities"]["community_members"]] == ["active"]
    assert [f["friend_id"] for f in areas["leaderboards"]["player_friends"]] == ["bob"]
    assert "bob" not in str(areas["players"])  # only alice's own rows

    # Erase, as an app admin.
    owner = await factory.admin(keys.org_id, Role.OWNER)
    problem(await client.delete("/v1/players/alice", headers=alice), 403)
    erased = await client.delete("/v1/players/alice", headers=owner.headers(keys.app_id))
    assert erased.status_code == 200, erased.text
    body = erased.json()
    assert body["erased"] and body["anonymous_id"].startswith("anon_")
    assert body["rows"]["players"] == 1 and body["rows"]["ledger_accounts"] == 1 and body["rows"]["events"] == 1

    assert await rows_about(runtime, keys.app_id, "alice") == {}
    problem(await client.get("/v1/players/alice/account", headers=keys.server), 404)
    problem(await client.get("/v1/players/alice/export", headers=keys.server), 404, "player_not_found")
    problem(await client.get("/v1/players/alice/account", headers=alice), 401)  # her tokens died with her
    # Ranks vanish from every board, the rank index included; the others move up.
    assert ranks(await board(client, keys.server, "points")) == [(1, "bob", 20)]
    around = (await client.get("/v1/leaderboards/points/players/alice", headers=keys.server)).json()
    assert all(e["player_id"] != "alice" for e in around["items"]), around
    # The ledger keeps its balanced history under the anonymous holder.
    assert await verify(runtime, keys.app_id) == []
    assert await balance(client, keys, body["anonymous_id"]) == 0  # no player: the holder is no one's account
    # Bob's side of the friendship went too.
    friends = (await client.get("/v1/players/bob/friends", headers=keys.server)).json()
    assert "alice" not in str(friends)

    # Idempotent: again changes nothing; the erasure is in the audit log.
    again = await client.delete("/v1/players/alice", headers=keys.server)
    assert again.status_code == 200 and again.json() == {"player_id": "alice", "erased": False,
                                                          "anonymous_id": None, "rows": {}}
    audit = (await client.get("/v1/audit", headers=owner.headers(keys.app_id), params={"limit": 200})).json()
    erasures = [e for e in audit["items"] if e["target"] == {"player_id": "alice"} and e["status"] == 200
                and "erase" in e["action"]]
    assert len(erasures) == 2, audit["items"]


async def test_racing_erasures_leave_the_books_clean(client: httpx.AsyncClient, factory: Factory,
                                                     runtime: Runtime) -> None:
    keys = await factory.app()
    await currency(client, keys)
    await grant(client, keys, "carol", 40)
    replies = await asyncio.gather(*(client.delete("/v1/players/carol", headers=keys.server) for _ in range(4)))
    assert all(r.status_code == 200 for r in replies), [r.text for r in replies]
    assert any(r.json()["erased"] for r in replies)
    assert await rows_about(runtime, keys.app_id, "carol") == {}
    assert await verify(runtime, keys.app_id) == []
    assert registry_of(runtime).areas  # the engine's runtime carries the registry
