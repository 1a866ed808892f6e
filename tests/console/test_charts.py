"""Charts drawn by us as SVG on the server: the campaign page's spend and impressions over time (in
process, SQLite and PostgreSQL), and the chart builders' geometry and escaping."""

from __future__ import annotations

import re

import httpx

from questline.console.charts import bars, line
from questline.tenancy.schemas import Role
from tests.conftest import Factory
from tests.console.helpers import Console
from tests.finance.test_disputes import settled_campaign
from tests.market.helpers import Market


async def test_a_campaigns_spend_and_impressions_are_charted(client: httpx.AsyncClient, factory: Factory) -> None:
    keys = await factory.app()
    market = Market(client, keys)
    _, _, campaign = await settled_campaign(market, impressions=20_000)
    console = await Console(client, keys.app_id).sign_in(await factory.admin(keys.org_id, Role.VIEWER))
    listed = await console.get("/campaigns", status="completed")
    assert f'/campaigns/{campaign["id"]}"' in listed.text
    assert f'/campaigns/{campaign["id"]}"' not in (await console.get("/campaigns", status="draft")).text
    page = await console.get(f"/campaigns/{campaign['id']}")
    assert page.status_code == 200
    assert 'id="spent">10000<' in page.text
    spend = re.search(r'<figure id="spend-chart">(.*?)</figure>', page.text, re.S)
    assert spend and spend.group(1).startswith("<svg") and 'role="img"' in spend.group(1)
    assert re.findall(r"<rect [^>]*class=\"bar\"><title>[^<]*: 10,000 USD minor units</title>", spend.group(1))
    seen = re.search(r'<figure id="impressions-chart">(.*?)</figure>', page.text, re.S)
    assert seen and ": 20,000</title>" in seen.group(1)
    hourly = await console.get(f"/campaigns/{campaign['id']}", by="hour")
    assert "Spend per hour" in hourly.text
    missing = await console.get("/campaigns/cmp_" + "0" * 26)
    assert "campaign_not_found" in missing.text


def test_bars_scale_to_a_round_top_and_escape_labels() -> None:
    svg = str(bars("Levels <1>", [("<b>", 30), ("2", 70), ("3", 0)]))
    heights = [float(h) for h in re.findall(r'<rect [^>]*height="([\d.]+)"', svg)]
    assert heights[1] / heights[0] == 70 / 30 and heights[2] == 0
    assert ">100<" in svg  # the axis tops out at 100, the next round number above 70
    assert "<b>" not in svg and "&lt;b&gt;: 30" in svg and "Levels &lt;1&gt;" in svg
    assert str(bars("empty", [])).startswith("<svg")  # nothing to draw still draws the axes


def test_a_line_passes_through_every_point_in_order() -> None:
    svg = str(line("Events", [("a", 0), ("b", 5), ("c", 10)]))
    points = re.search(r'<polyline [^>]*points="([^"]+)"', svg)
    assert points
    ys = [float(pair.split(",")[1]) for pair in points.group(1).split()]
    assert ys[0] > ys[1] > ys[2]  # higher values are drawn higher up
    assert svg.count("<circle") == 3
