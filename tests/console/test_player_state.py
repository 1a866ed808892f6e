"""A player's full state on the console's player page, on SQLite and PostgreSQL: besides levels,
balances and the ledger, every area's rows held about the player (stats, claims, …), in folds."""

from __future__ import annotations

import re

import httpx

from questline.kit.runtime import Runtime
from questline.tenancy.schemas import Role
from tests.conftest import Factory
from tests.console.helpers import Console
from tests.pipeline.helpers import send, settle


async def test_the_player_page_shows_everything_held(client: httpx.AsyncClient, factory: Factory,
                                                     runtime: Runtime) -> None:
    keys = await factory.app()
    assert (await client.put("/v1/definitions/stat/runs", headers=keys.server,
                             json={"event_type": "run.done"})).is_success
    assert (await send(client, keys, [{"id": "r1", "player_id": "ana", "type": "run.done"}])).status_code in (200, 202)
    await settle(runtime)
    console = await Console(client, keys.app_id).sign_in(await factory.admin(keys.org_id, Role.ADMIN))
    page = await console.get("/players/ana")
    assert page.status_code == 200 and 'id="held"' in page.text
    folds = dict(re.findall(r'<details id="held-([^"]+)"><summary>[^:]+: (\d+) rows?</summary>', page.text))
    assert folds.get("player_stats", "0") != "0", folds
    assert "runs" in page.text
    other = await factory.app("other")
    assert (await send(client, other, [{"id": "z1", "player_id": "zed", "type": "x"}])).status_code in (200, 202)
    missing = await console.get("/players/zed")
    assert 'id="held"' not in missing.text  # another app's player is nobody here
