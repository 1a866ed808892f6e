"""A competition's live standings page, in process on SQLite and PostgreSQL: it renders the current top
ten, hands its own script the competition and the admin's token, and only it (with the live page) may
connect back to the engine. The live updates themselves run in the browser (standings.js)."""

from __future__ import annotations

import httpx

from questline.tenancy.schemas import Role
from tests.competitions.helpers import competition, create
from tests.conftest import Factory
from tests.console.helpers import Console


async def test_the_standings_page_is_wired_to_its_channel(client: httpx.AsyncClient, factory: Factory) -> None:
    keys = await factory.app()
    made = await create(client, keys, competition("2026-03-10T13:00:00Z", "2026-03-10T15:00:00Z"))
    console = await Console(client, keys.app_id).sign_in(await factory.admin(keys.org_id, Role.VIEWER))

    page = await console.get(f"/competitions/{made['id']}/live")
    assert page.status_code == 200
    assert f'data-competition="{made["id"]}"' in page.text and 'data-token="' in page.text
    assert '<script src="/console-assets/standings.js" defer></script>' in page.text
    assert "Spring trading cup" in page.text and "Nobody has scored yet." in page.text
    policy = page.headers["content-security-policy"]
    assert "connect-src 'self' ws://" in policy and "script-src 'self'" in policy
    script = await client.get("/console-assets/standings.js")
    assert script.status_code == 200 and '"competition:" + id' in script.text and "innerHTML" not in script.text

    missing = await console.get("/competitions/nope/live")
    assert missing.status_code == 200 and "not_found" in missing.text
    assert "connect-src 'none'" in (await console.get("/retention")).headers["content-security-policy"]
