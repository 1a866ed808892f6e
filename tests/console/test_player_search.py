"""Player search, over the API and in the console, on SQLite and PostgreSQL: by id, username or
display name prefix, any case, scoped to the caller's app."""

from __future__ import annotations

import re

import httpx

from questline.tenancy.schemas import Role
from tests.conftest import Factory, problem
from tests.console.helpers import Console

PLAYERS = {"kai-01": ("kai_runner", "Kai Lindqvist"), "mo-7": ("Mo", "Morgan 50%"),
           "zed": (None, "Zed_the_Kai"), "kaiser": ("emperor", None)}


async def seed(client: httpx.AsyncClient, headers: dict[str, str]) -> None:
    for player_id, (username, display) in PLAYERS.items():
        account = {k: v for k, v in {"username": username, "display_name": display}.items() if v}
        answer = await client.put(f"/v1/players/{player_id}/account", headers=headers, json=account)
        assert answer.status_code == 200, answer.text


async def found(client: httpx.AsyncClient, headers: dict[str, str], **params: str) -> list[str]:
    answer = await client.get("/v1/players", headers=headers, params=params)
    assert answer.status_code == 200, answer.text
    return [p["player_id"] for p in answer.json()["items"]]


async def test_players_are_found_by_id_username_or_display_name_prefix(client: httpx.AsyncClient,
                                                                       factory: Factory) -> None:
    keys = await factory.app()
    await seed(client, keys.server)
    other = await factory.app("other")
    await client.put("/v1/players/kai-other/account", headers=other.server, json={"username": "kai"})
    assert await found(client, keys.server, q="kai") == ["kai-01", "kaiser"]  # id or username, not "Zed_the_Kai"
    assert await found(client, keys.server, q="KAI L") == ["kai-01"]  # display name, any case
    assert await found(client, keys.server, q="mo") == ["mo-7"]
    assert await found(client, keys.server, q="Morgan 50%") == ["mo-7"]  # % is a character, not a wildcard
    assert await found(client, keys.server, q="morgan 5%") == []
    assert await found(client, keys.server, q="zed_") == ["zed"]
    assert await found(client, keys.server, q="zeda") == []  # _ is not a wildcard either
    assert await found(client, keys.server, q="emp") == ["kaiser"]
    first = (await client.get("/v1/players", headers=keys.server, params={"q": "kai", "limit": 1})).json()
    rest = await found(client, keys.server, q="kai", limit="1", cursor=first["next_cursor"])
    assert [p["player_id"] for p in first["items"]] + rest == ["kai-01", "kaiser"]
    problem(await client.get("/v1/players", headers=keys.server, params={"q": ""}), 422)
    problem(await client.get("/v1/players", headers=keys.server, params={"q": "x" * 201}), 422)
    refused = await client.get("/v1/players", headers=keys.client, params={"q": "kai"})
    assert refused.status_code in (401, 403)


async def test_the_console_searches_players(client: httpx.AsyncClient, factory: Factory) -> None:
    keys = await factory.app()
    await seed(client, keys.server)
    console = await Console(client, keys.app_id).sign_in(await factory.admin(keys.org_id, Role.VIEWER))
    page = await console.get("/players", q="kai")
    assert page.status_code == 200 and 'role="search"' in page.text and 'value="kai"' in page.text
    listed = re.findall(r'/players/([^"]+)">', page.text)
    assert listed == ["kai-01", "kaiser"]
    none = await console.get("/players", q="nobody")
    assert "starts with “nobody”" in none.text
    everyone = await console.get("/players")
    assert len(re.findall(r'/players/([^"]+)">', everyone.text)) == 4
