"""The treasury's rules: exchange rates finance staff set, conversions at those rates, statements.

Finance staff are the app's admins (and its server key). A rate is stored per pair as a decimal
string and recorded on every conversion made with it; a conversion is one ledger transaction
through the ``exchange`` account. Statements read the ledger's postings of one wallet account.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from questline.kit.clock import Clock
from questline.kit.errors import Unprocessable
from questline.ledger import service as ledger
from questline.ledger.schemas import StatementOut, TransactionOut, WalletOwnerKind
from questline.sponsors import service as sponsors
from questline.tenancy.auth import Caller
from questline.treasury import repository as repo
from questline.treasury.schemas import ConversionIn, RateOut

# Rates ----------------------------------------------------------------------------------------


async def put_rate(session: AsyncSession, clock: Clock, caller: Caller, base: str, quote: str,
                   rate: str) -> RateOut:
    """Set what one ``base`` buys of ``quote``; conversions from then on use it."""
    if base == quote:
        raise Unprocessable("a rate needs two different currencies", code="same_currency")
    value = ledger.parse_rate(rate)
    for code in (base, quote):
        await ledger.ensure_currency(session, clock, caller.app, code)
    await repo.put_rate(session, caller.app, base, quote, str(value), caller.identity, clock.now())
    found = await repo.get_rate(session, caller.app, base, quote)
    assert found is not None
    await session.refresh(found)
    return RateOut.model_validate(found)


async def list_rates(session: AsyncSession, app_id: str) -> list[RateOut]:
    return [RateOut.model_validate(r) for r in await repo.list_rates(session, app_id)]


# Wallet owners --------------------------------------------------------------------------------


async def authorize_owner(session: AsyncSession, caller: Caller, owner_kind: WalletOwnerKind,
                          owner_id: str) -> None:
    """The caller may act on this wallet: a brand's own token or member, a streamer themself, or trusted."""
    if owner_kind == "brand":
        await sponsors.authorize_brand(session, caller, owner_id)
    elif owner_kind == "streamer":
        sponsors.authorize_streamer(caller, owner_id)
        await sponsors.get_streamer(session, caller.app, owner_id)


# Conversions ----------------------------------------------------------------------------------


async def convert(session: AsyncSession, clock: Clock, caller: Caller, owner_kind: WalletOwnerKind, owner_id: str,
                  body: ConversionIn, idempotency_key: str) -> TransactionOut:
    """Exchange the owner's money at the rate finance staff set for the pair (``422 no_rate`` without one)."""
    await authorize_owner(session, caller, owner_kind, owner_id)
    rate = await repo.get_rate(session, caller.app, body.source, body.target)
    if rate is None:
        raise Unprocessable(f"no rate is set from {body.source} to {body.target}; finance staff set one with "
                            f"PUT /v1/finance/rates/{body.source}/{body.target}", code="no_rate",
                            extra={"from": body.source, "to": body.target})
    reference: dict[str, Any] = {**(body.reference or {}), "rate_set_at": rate.set_at.isoformat(),
                                 "rate_set_by": rate.set_by}
    return await ledger.convert(session, clock, app_id=caller.app, owner_kind=owner_kind, owner_id=owner_id,
                                source=body.source, target=body.target, amount=body.amount, rate=rate.rate,
                                idempotency_key=f"conversion:{owner_kind}:{owner_id}:{idempotency_key}",
                                reference=reference, actor=caller.identity)


# Statements -----------------------------------------------------------------------------------


async def statement(session: AsyncSession, caller: Caller, owner_kind: WalletOwnerKind, owner_id: str, *,
                    currency: str, start: datetime, end: datetime, sub: str) -> StatementOut:
    await authorize_owner(session, caller, owner_kind, owner_id)
    return await ledger.statement(session, app_id=caller.app, owner_kind=owner_kind, owner_id=owner_id,
                                  currency=currency, start=start, end=end, sub=sub)
