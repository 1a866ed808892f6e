"""Brand and streamer views in process, on SQLite and PostgreSQL: each signs in with their own
account (the app named by its public client key) and sees only their own wallet, campaigns and
earnings; another brand's campaign is refused by the API; a forged form signs nobody in."""

from __future__ import annotations

import re

import httpx

from tests.conftest import Factory
from tests.finance.test_disputes import settled_campaign
from tests.market.helpers import PASSWORD, Account, Market


async def partner_sign_in(client: httpx.AsyncClient, client_key: str, account: Account) -> httpx.Response:
    form = await client.get("/console/partners/login", params={"key": client_key, "as": account.role})
    assert form.status_code == 200 and f'value="{client_key}"' in form.text
    return await client.post("/console/partners/login", data={
        "csrf": client.cookies["ql_console_csrf"], "key": client_key, "role": account.role,
        "email": account.email, "password": PASSWORD})


async def test_a_brand_and_a_streamer_see_their_own_pages(client: httpx.AsyncClient, factory: Factory) -> None:
    keys = await factory.app()
    market = Market(client, keys)
    brand, streamer, campaign = await settled_campaign(market)
    other_brand = await market.brand(name="Other Co")
    other = await market.campaign(other_brand, approve=False, title="Not yours")

    assert (await client.get("/console/partners")).status_code == 303  # not signed in
    wrong = await client.post("/console/partners/login", data={
        "csrf": "forged", "key": keys.client_key, "role": "brand", "email": brand.email, "password": PASSWORD})
    assert wrong.status_code == 403 and "ql_partner" not in wrong.cookies
    assert (await partner_sign_in(client, keys.client_key, brand)).status_code == 303
    home = await client.get("/console/partners")
    assert home.status_code == 200 and brand.body["company_name"] in home.text
    assert f'/console/partners/campaigns/{campaign["id"]}"' in home.text and "Not yours" not in home.text
    page = await client.get(f"/console/partners/campaigns/{campaign['id']}")
    assert page.status_code == 200 and 'id="spent">10000<' in page.text and '<figure id="spend-chart"><svg' in page.text
    refused = await client.get(f"/console/partners/campaigns/{other['id']}")
    assert refused.status_code == 404 and "campaign_not_found" in refused.text
    out = await client.post("/console/partners/logout", data={"csrf": client.cookies["ql_console_csrf"]})
    assert out.status_code == 303
    client.cookies.delete("ql_partner")
    client.cookies.delete("ql_partner_account")

    wrong_password = await client.post("/console/partners/login", data={
        "csrf": client.cookies["ql_console_csrf"], "key": keys.client_key, "role": "streamer",
        "email": streamer.email, "password": "nope"})
    assert wrong_password.status_code == 401 and "invalid_credentials" in wrong_password.text
    assert (await partner_sign_in(client, keys.client_key, streamer)).status_code == 303
    mine = await client.get("/console/partners")
    assert mine.status_code == 200 and streamer.body["display_name"] in mine.text
    wallet = re.search(r'<table id="wallet">.*?</table>', mine.text, re.S)
    assert wallet and "<td>USD</td><td>9000</td>" in wallet.group(0)  # the 90% of 10,000 released to them
    assert campaign["title"] in mine.text and '<figure id="earnings-chart"><svg' in mine.text
    assert re.search(r'<p id="energy">\d+ of \d+', mine.text)
    # A streamer has no brand pages.
    assert (await client.get(f"/console/partners/campaigns/{campaign['id']}")).status_code == 303
