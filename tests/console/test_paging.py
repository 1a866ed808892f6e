"""The console's long lists page forward and back, on SQLite and PostgreSQL: more rows than a page,
the next pages show the rest, no row twice and none lost; each page's Previous link leads back to
the page before it, a filter is kept from page to page, and a forged cursor is the API's problem."""

from __future__ import annotations

import httpx

from questline.tenancy.schemas import Role
from tests.conftest import Factory
from tests.console.helpers import Console, walk_pages
from tests.console.test_partner_pages import partner_sign_in
from tests.market.helpers import Market


async def test_players_and_the_audit_log_page_forward_and_back(client: httpx.AsyncClient, factory: Factory) -> None:
    keys = await factory.app()
    made = [f"pager-{n:03d}" for n in range(105)]
    for player in made:
        answer = await client.put(f"/v1/players/{player}/account", headers=keys.server,
                                  json={"display_name": f"Pager {player[-3:]}"})
        assert answer.status_code == 200, answer.text
    await client.put("/v1/players/other-one/account", headers=keys.server, json={})
    console = await Console(client, keys.app_id).sign_in(await factory.admin(keys.org_id, Role.OWNER))

    pages = await walk_pages(client, console.base + "/players", r'/players/([^"]+)">', "?q=pager")
    assert [len(p) for p in pages] == [50, 50, 5]
    seen = [p for page in pages for p in page]
    assert len(set(seen)) == len(seen) and sorted(seen) == made  # the filter held on every page

    entries = await walk_pages(client, console.base + "/audit", r'<tr id="entry-(\d+)"')
    assert [len(p) for p in entries] == [100, 6]  # 106 account writes by the server key
    ids = [e for page in entries for e in page]
    assert len(set(ids)) == len(ids) == 106

    forged = await console.get("/players", cursor="bm90LWEtY3Vyc29y")
    assert forged.status_code == 200 and "invalid_cursor" in forged.text


async def test_campaigns_page_with_their_status_filter(client: httpx.AsyncClient, factory: Factory) -> None:
    keys = await factory.app()
    market = Market(client, keys)
    brand = await market.brand()
    drafts = [(await market.campaign(brand, approve=False))["id"] for _ in range(53)]
    live = await market.campaign(brand)
    console = await Console(client, keys.app_id).sign_in(await factory.admin(keys.org_id, Role.VIEWER))
    pages = await walk_pages(client, console.base + "/campaigns", r'<tr id="campaign-([^"]+)"', "?status=draft")
    assert [len(p) for p in pages] == [50, 3]
    seen = [c for page in pages for c in page]
    assert len(set(seen)) == len(seen) and set(seen) == set(drafts) and live["id"] not in seen


async def test_a_brands_own_campaigns_page_in_its_console(client: httpx.AsyncClient, factory: Factory) -> None:
    keys = await factory.app()
    market = Market(client, keys)
    brand, other = await market.brand(), await market.brand()
    mine = [(await market.campaign(brand, approve=False))["id"] for _ in range(52)]
    await market.campaign(other, approve=False)
    signed = await partner_sign_in(client, keys.client_key, brand)
    assert signed.status_code == 303, signed.text
    pages = await walk_pages(client, "/console/partners", r'<tr id="campaign-([^"]+)"')
    assert [len(p) for p in pages] == [50, 2]
    seen = [c for page in pages for c in page]
    assert len(set(seen)) == len(seen) and set(seen) == set(mine)  # the other brand's never shows
