"""A campaign's live page, in process on SQLite and PostgreSQL: it renders the campaign's current
impressions and spend, hands its own script the campaign and the admin's token, and only it (with the
other live pages) may connect back to the engine. The live updates run in the browser (campaign.js,
tests/console/test_console.py) over the campaign:<id> frames (tests/market/test_live_totals.py)."""

from __future__ import annotations

import httpx

from questline.tenancy.schemas import Role
from tests.conftest import Factory
from tests.console.helpers import Console
from tests.market.helpers import Market


async def test_the_campaign_live_page_is_wired_to_its_channel(client: httpx.AsyncClient, factory: Factory) -> None:
    keys = await factory.app()
    market = Market(client, keys)
    brand = await market.brand()
    campaign = await market.campaign(brand, budget=50_000, rate=1_000, impression_target=5_000)
    streamer = await market.streamer()
    assert (await market.join(campaign["id"], streamer)).status_code == 201
    await market.impressions(campaign["id"], [("r-1", streamer.id, 123)])
    console = await Console(client, keys.app_id).sign_in(await factory.admin(keys.org_id, Role.VIEWER))

    charts = await console.get(f"/campaigns/{campaign['id']}")
    assert f'href="/console/apps/{keys.app_id}/campaigns/{campaign["id"]}/live"' in charts.text
    page = await console.get(f"/campaigns/{campaign['id']}/live")
    assert page.status_code == 200
    assert f'data-campaign="{campaign["id"]}"' in page.text and 'data-token="ey' in page.text
    assert 'id="impressions">123<' in page.text and 'id="impression-target">5000<' in page.text
    assert 'id="spent">123<' in page.text and 'id="remaining">49877<' in page.text
    assert '<script src="/console-assets/campaign.js" defer></script>' in page.text
    policy = page.headers["content-security-policy"]
    assert "connect-src 'self' ws://" in policy and "script-src 'self'" in policy
    script = await client.get("/console-assets/campaign.js")
    assert script.status_code == 200 and '"campaign:" + id' in script.text and "innerHTML" not in script.text

    missing = await console.get("/campaigns/cmp_" + "0" * 26 + "/live")
    assert missing.status_code == 200 and "campaign_not_found" in missing.text and "data-token" not in missing.text
    assert "connect-src 'none'" in (await console.get(f"/campaigns/{campaign['id']}")).headers[
        "content-security-policy"]
