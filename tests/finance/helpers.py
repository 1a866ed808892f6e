"""Helpers for the finance tests, and makers for the foundation's route walk."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import sqlalchemy as sa

from questline.audit.models import AuditEntry
from questline.kit.db import unit_of_work
from questline.kit.runtime import Runtime
from questline.ledger import service as ledger
from tests.market.helpers import Market, idem


async def make_payment_method(world: Any, client: httpx.AsyncClient) -> str:
    market = Market(client, world.a)
    brand = getattr(world, "market_brand", None) or await market.brand()
    made = await market.ok("POST", f"/v1/brands/{brand.id}/payment-methods", 201, headers=world.a.server,
                           json={"kind": "paypal", "email": "pay@walk.example"})
    return str(made["id"])


async def make_deposit(world: Any, client: httpx.AsyncClient) -> str:
    market = Market(client, world.a)
    brand = getattr(world, "market_brand", None) or await market.brand()
    made = await market.ok("POST", f"/v1/brands/{brand.id}/deposits", 201, headers=idem(world.a.server),
                           json={"provider": "manual", "currency": "USD", "amount": 1000})
    return str(made["id"])


async def fund(runtime: Runtime, app_id: str, owner_kind: str, owner_id: str, amount: int,
               currency: str = "USD") -> None:
    """Put money in a wallet's available balance (as earnings released would), through the ledger."""
    async with unit_of_work(runtime.sessions) as session:
        await ledger.deposit(session, runtime.clock, app_id=app_id, owner_kind=owner_kind,  # type: ignore[arg-type]
                             owner_id=owner_id, currency=currency, amount=amount,
                             idempotency_key=f"test-fund:{uuid.uuid4().hex}")


async def audit_actions(runtime: Runtime, app_id: str, withdrawal_id: str) -> list[tuple[str, str]]:
    """(action, actor) of a withdrawal's steps in the audit log, oldest first."""
    async with unit_of_work(runtime.sessions) as session:
        rows = (await session.execute(
            sa.select(AuditEntry.action, AuditEntry.actor_kind, AuditEntry.actor_id, AuditEntry.target)
            .where(AuditEntry.app_id == app_id, AuditEntry.action.like("withdrawal.%")).order_by(AuditEntry.id)
        )).all()
    return [(action, f"{kind}:{actor}") for action, kind, actor, target in rows
            if target.get("withdrawal_id") == withdrawal_id]


async def make_dispute(world: Any, client: httpx.AsyncClient) -> str:
    """A brand's dispute of a streamer's impressions in its campaign."""
    market = Market(client, world.a)
    brand = getattr(world, "market_brand", None) or await market.brand()
    campaign = await market.campaign(brand, title="disputed campaign")
    streamer = await market.streamer()
    assert (await market.join(campaign["id"], streamer)).status_code == 201
    await market.impressions(campaign["id"], [(f"walk-{uuid.uuid4().hex[:8]}", streamer.id, 100)])
    made = await market.ok("POST", "/v1/disputes", 201, headers=brand.headers, json={
        "campaign_id": campaign["id"], "streamer_id": streamer.id, "impressions": 10, "reason": "bots"})
    return str(made["id"])


async def make_review(world: Any, client: httpx.AsyncClient) -> str:
    """A deposit above the review threshold, queued for review."""
    market = Market(client, world.a)
    brand = getattr(world, "market_brand", None) or await market.brand()
    await market.deposit(brand, 2_000_000)
    assert world.finance_a is not None
    queue = await market.ok("GET", "/v1/finance/reviews", headers=world.finance_a.headers(world.a.app_id),
                            params={"status": "pending"})
    return str(queue["items"][0]["id"])
