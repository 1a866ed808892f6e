"""Helpers for the billing tests (brands with spend and plans, invoices over HTTP), and makers for the
route walks."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from typing import Any

import httpx
from pypdf import PdfReader

from questline.kit.clock import ManualClock
from tests.market.helpers import Account, Market, idem

MONTH = "2026-03"  # the tests' clock starts on 2026-03-10
AFTER_MONTH = datetime(2026, 4, 2, 9, 0, tzinfo=UTC)


async def settings(market: Market, **changes: Any) -> dict[str, Any]:
    body = {"tax_rates": {"DE": 1900, "FR": 2000, "US": 0}, **changes}
    return dict(await market.ok("PUT", "/v1/billing/settings", headers=market.server, json=body))


async def brand_in(market: Market, country: str | None = "DE", name: str | None = None) -> Account:
    brand = await market.brand(name=name)
    billing = {"address": "1 Fizz Street, Berlin", "tax_id": "DE123456789", **({"country": country} if country else {})}
    await market.ok("PATCH", f"/v1/brands/{brand.id}", headers=market.server, json={"billing": billing})
    return brand


async def spend(market: Market, brand: Account, batches: list[int], *, rate: int = 333,
                budget: int = 50_000) -> dict[str, Any]:
    """A campaign of the brand that a streamer runs: impressions in ``batches`` (each one ledger payment)."""
    campaign = await market.campaign(brand, budget=budget, rate=rate)
    streamer = await market.streamer()
    assert (await market.join(campaign["id"], streamer)).status_code == 201
    for n, count in enumerate(batches):
        await market.impressions(campaign["id"], [(f"{campaign['id']}-{n}", streamer.id, count)])
    return campaign


async def generate(market: Market, brand_id: str, period: str = MONTH, status: int = 200,
                   **extra: Any) -> Any:
    return await market.ok("POST", "/v1/billing/invoices/generate", status, headers=market.server,
                           json={"brand_id": brand_id, **({"period": period} if period else {}), **extra})


async def finalize(market: Market, invoice_id: str) -> dict[str, Any]:
    return dict(await market.ok("POST", f"/v1/billing/invoices/{invoice_id}/finalize", headers=market.server))


def pdf_text(content: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(content)).pages)


async def subscribed(market: Market, clock: ManualClock, *, fee: int = 4_900, usage_bps: int = 0,
                     brands: int = 1) -> tuple[list[Account], dict[str, Any]]:
    plan = await market.ok("POST", "/v1/billing/plans", 201, headers=market.server,
                           json={"name": "Growth", "currency": "USD", "monthly_fee": fee, "usage_bps": usage_bps})
    made = []
    for _ in range(brands):
        brand = await brand_in(market)
        await market.ok("PUT", f"/v1/billing/brands/{brand.id}/subscription", headers=brand.headers,
                        json={"plan_id": plan["id"]})
        made.append(brand)
    return made, dict(plan)


# Makers for the route walks (tests/foundation/test_access.py): a real invoice of app A, drafted for a
# campaign that ran to its target.

async def make_invoice(world: Any, client: httpx.AsyncClient) -> str:
    market = Market(client, world.a)
    brand = getattr(world, "market_brand", None) or await market.brand()
    return await victim_invoice(market, brand)


async def victim_invoice(market: Market, brand: Account) -> str:
    """An open invoice of the brand, for a campaign of its that ran to its target."""
    await settings(market, unknown_country="zero")
    campaign = await spend(market, brand, [2_000], rate=500, budget=1_000)
    assert (await market.campaign_state(campaign["id"]))["status"] == "completed"
    drafts = await generate(market, brand.id, period="", campaign_id=campaign["id"])
    return str((await finalize(market, drafts[0]["id"]))["id"])


async def make_plan(world: Any, client: httpx.AsyncClient) -> str:
    made = await Market(client, world.a).ok("POST", "/v1/billing/plans", 201, headers=world.a.server,
                                            json={"name": "Walk", "currency": "USD", "monthly_fee": 1_000})
    return str(made["id"])


__all__ = ["idem"]
