"""The fee structure: the platform's commission per campaign type and a fixed fee per campaign.

Each change is a new version; the newest applies to campaigns **approved** from then on. A campaign
keeps the commission it was approved with (``campaigns.commission_bps``), so a change never reaches a
running campaign. Until an app sets one, the marketplace settings' commission applies and there is no
fixed fee. The fixed fee is booked at approval, in the approval's transaction: brand's available money
-> the platform's revenue (``platform_fee``, keyed by the campaign, so it is charged once); short of
money, the approval is refused (``409 insufficient_funds``) and nothing changes.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from questline.campaigns.models import Campaign
from questline.campaigns.service import APPROVAL_FEES
from questline.finance import repository as repo
from questline.finance.schemas import FeesIn, FeesOut
from questline.kit.ids import new_id
from questline.kit.runtime import Runtime
from questline.ledger import service as ledger
from questline.ledger.schemas import AccountRef
from questline.sponsors import service as sponsors
from questline.tenancy.auth import Caller

HISTORY = 20


async def current(session: AsyncSession, app_id: str) -> FeesOut:
    found = await repo.current_fees(session, app_id)
    if found is None:
        market = await sponsors.market_settings(session, app_id)
        return FeesOut(version=0, commission_bps=market.commission_bps, by_type={}, fixed_fees={}, set_by=None,
                       created_at=None)
    return FeesOut.model_validate(found)


async def history(session: AsyncSession, app_id: str) -> list[FeesOut]:
    return [FeesOut.model_validate(f) for f in await repo.fee_history(session, app_id, HISTORY)]


async def put(session: AsyncSession, runtime: Runtime, caller: Caller, body: FeesIn) -> FeesOut:
    """A new version of the fee structure (campaigns approved from now on get it)."""
    for code in body.fixed_fees:
        await ledger.ensure_currency(session, runtime.clock, caller.app, code)
    latest = await repo.current_fees(session, caller.app)
    await repo.insert_fees(session, {
        "id": new_id("fee"), "app_id": caller.app, "version": (latest.version if latest else 0) + 1,
        "commission_bps": body.commission_bps, "by_type": body.by_type, "fixed_fees": body.fixed_fees,
        "set_by": caller.identity, "created_at": runtime.clock.now()})
    return await current(session, caller.app)


def commission_for(fees: FeesOut, categories: list[str]) -> int:
    """A campaign's type is its first category the structure names; else the default commission."""
    for category in categories:
        if category in fees.by_type:
            return fees.by_type[category]
    return fees.commission_bps


async def on_approval(session: AsyncSession, runtime: Runtime, campaign: Campaign, default_bps: int,
                      actor: str) -> int:
    """The commission a campaign being approved gets; books the fixed fee (once, keyed by the campaign)."""
    found = await repo.current_fees(session, campaign.app_id)
    if found is None:
        return default_bps
    fees = FeesOut.model_validate(found)
    fee = fees.fixed_fees.get(campaign.currency, 0)
    if fee:
        await ledger.transfer(
            session, runtime.clock, app_id=campaign.app_id, idempotency_key=f"finance:campaign-fee:{campaign.id}",
            kind="platform_fee", source="finance", entries=[
                (AccountRef.wallet("brand", campaign.brand_id, campaign.currency), -fee),
                (AccountRef.wallet("platform", ledger.PLATFORM_REVENUE, campaign.currency), fee)],
            reference={"campaign_id": campaign.id, "fee_version": fees.version}, actor=actor)
    return commission_for(fees, list(campaign.categories))


def install(runtime: Runtime) -> None:
    runtime.extensions.setdefault(APPROVAL_FEES, on_approval)
