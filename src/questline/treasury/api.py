"""Routes: exchange rates and conversions, wallet statements (JSON, CSV, PDF)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Header, Path, Query, Response

from questline.kit.ids import ID_PATTERN
from questline.kit.routing import ClockDep, SessionDep, UnitOfWorkRoute
from questline.ledger import service as ledger
from questline.ledger.schemas import FIAT_PATTERN, SUB_PATTERN, StatementOut, TransactionOut, WalletOwnerKind
from questline.tenancy.auth import BRAND, IDEMPOTENCY_HEADER, SERVER, STREAMER, Caller, ServerOrAdmin, allow
from questline.tenancy.schemas import Role
from questline.treasury import render, service
from questline.treasury.schemas import ConversionIn, RateIn, RateOut, StatementFormat

router = APIRouter(prefix="/v1", tags=["finance"], route_class=UnitOfWorkRoute)
BrandId = Annotated[str, Path(pattern=ID_PATTERN, description="a brand's id (brd_…)")]
StreamerId = Annotated[str, Path(pattern=ID_PATTERN, description="a streamer's id (str_…)")]
Fiat = Annotated[str, Path(pattern=FIAT_PATTERN, description="an ISO 4217 code, e.g. USD")]
RequiredKey = Annotated[str, Header(alias=IDEMPOTENCY_HEADER, description="one key per conversion; a retry reuses it")]
RateReader = Annotated[Caller, allow(SERVER, BRAND, STREAMER, admin_role=Role.VIEWER)]
BrandMoney = Annotated[Caller, allow(SERVER, BRAND, admin_role=Role.ADMIN, idempotency="required")]
StreamerMoney = Annotated[Caller, allow(SERVER, STREAMER, admin_role=Role.ADMIN, idempotency="required")]
BrandReader = Annotated[Caller, allow(SERVER, BRAND, admin_role=Role.VIEWER)]
StreamerReader = Annotated[Caller, allow(SERVER, STREAMER, admin_role=Role.VIEWER)]
PlatformReader = Annotated[Caller, allow(SERVER, admin_role=Role.VIEWER)]
Currency = Annotated[str, Query(pattern=FIAT_PATTERN, description="the wallet's currency, e.g. USD")]
Start = Annotated[datetime, Query(alias="from", description="the period's start (included), with a time zone")]
End = Annotated[datetime, Query(alias="to", description="the period's end (excluded), with a time zone")]
Sub = Annotated[str, Query(pattern=SUB_PATTERN, max_length=64,
                           description="the sub-account: empty for available money, pending, or hold:<ref>")]
Format = Annotated[StatementFormat, Query(description="json, csv or pdf")]
STATEMENT_RESPONSES: dict[int | str, dict[str, object]] = {200: {"content": {
    "text/csv": {"schema": {"type": "string"}},
    "application/pdf": {"schema": {"type": "string", "format": "binary"}}}}}


@router.put("/finance/rates/{base}/{quote}", response_model=RateOut)
async def put_rate(base: Fiat, quote: Fiat, body: RateIn, caller: ServerOrAdmin, session: SessionDep,
                   clock: ClockDep) -> RateOut:
    """Set the rate finance staff convert ``base`` into ``quote`` at (major units of quote per one base)."""
    return await service.put_rate(session, clock, caller, base, quote, body.rate)


@router.get("/finance/rates", response_model=list[RateOut])
async def list_rates(caller: RateReader, session: SessionDep) -> list[RateOut]:
    return await service.list_rates(session, caller.app)


@router.post("/brands/{brand_id}/wallet/conversions", response_model=TransactionOut, status_code=201,
             tags=["wallets"], responses={409: {"description": "insufficient_funds"}})
async def convert_brand(brand_id: BrandId, body: ConversionIn, caller: BrandMoney, session: SessionDep,
                        clock: ClockDep, idempotency_key: RequiredKey) -> TransactionOut:
    """Exchange the brand's money into another currency at the rate finance staff set."""
    return await service.convert(session, clock, caller, "brand", brand_id, body, idempotency_key)


@router.post("/streamers/{streamer_id}/wallet/conversions", response_model=TransactionOut, status_code=201,
             tags=["wallets"], responses={409: {"description": "insufficient_funds"}})
async def convert_streamer(streamer_id: StreamerId, body: ConversionIn, caller: StreamerMoney, session: SessionDep,
                           clock: ClockDep, idempotency_key: RequiredKey) -> TransactionOut:
    """Exchange the streamer's money into another currency at the rate finance staff set."""
    return await service.convert(session, clock, caller, "streamer", streamer_id, body, idempotency_key)


def _shaped(found: StatementOut, fmt: StatementFormat) -> StatementOut | Response:
    name = f"statement-{found.owner_id}-{found.currency}-{found.start:%Y%m%d}-{found.end:%Y%m%d}"
    if fmt == "csv":
        return Response(render.statement_csv(found), media_type="text/csv",
                        headers={"Content-Disposition": f'attachment; filename="{name}.csv"'})
    if fmt == "pdf":
        return Response(render.statement_pdf(found), media_type="application/pdf",
                        headers={"Content-Disposition": f'attachment; filename="{name}.pdf"'})
    return found


async def _statement(caller: Caller, session: SessionDep, kind: WalletOwnerKind, owner: str, currency: str,
                     start: datetime, end: datetime, sub: str, fmt: StatementFormat) -> StatementOut | Response:
    found = await service.statement(session, caller, kind, owner, currency=currency, start=start, end=end, sub=sub)
    return _shaped(found, fmt)


@router.get("/brands/{brand_id}/wallet/statement", response_model=StatementOut, tags=["wallets"],
            responses=STATEMENT_RESPONSES)
async def brand_statement(brand_id: BrandId, caller: BrandReader, session: SessionDep, currency: Currency,
                          start: Start, end: End, sub: Sub = "", format: Format = "json") -> StatementOut | Response:
    """The brand's statement for a period: opening balance, every movement, closing balance."""
    return await _statement(caller, session, "brand", brand_id, currency, start, end, sub, format)


@router.get("/streamers/{streamer_id}/wallet/statement", response_model=StatementOut, tags=["wallets"],
            responses=STATEMENT_RESPONSES)
async def streamer_statement(streamer_id: StreamerId, caller: StreamerReader, session: SessionDep,
                             currency: Currency, start: Start, end: End, sub: Sub = "",
                             format: Format = "json") -> StatementOut | Response:
    """The streamer's statement for a period (``sub=pending`` for earnings not yet released)."""
    return await _statement(caller, session, "streamer", streamer_id, currency, start, end, sub, format)


@router.get("/platform/wallet/statement", response_model=StatementOut, tags=["wallets"],
            responses=STATEMENT_RESPONSES)
async def platform_statement(caller: PlatformReader, session: SessionDep, currency: Currency, start: Start,
                             end: End, sub: Sub = "", format: Format = "json") -> StatementOut | Response:
    """The platform's revenue statement for a period."""
    return await _statement(caller, session, "platform", ledger.PLATFORM_REVENUE, currency, start, end, sub,
                            format)
