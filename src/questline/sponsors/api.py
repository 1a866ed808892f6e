"""Routes: brands and their members, streamers, marketplace sign-in, wallets, marketplace settings."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Path, Response

from questline.kit.idempotency import mark_replayed
from questline.kit.ids import ID_PATTERN
from questline.kit.pagination import Page, PageParams, page_params
from questline.kit.routing import ClockDep, RuntimeDep, SessionDep, UnitOfWorkRoute
from questline.ledger.schemas import DepositIn, TransactionOut, WalletOut
from questline.sponsors import service
from questline.sponsors.schemas import (
    AccountToken,
    AudienceIn,
    BrandIn,
    BrandOut,
    BrandPatch,
    LoginIn,
    MarketSettings,
    MemberIn,
    MemberOut,
    Platform,
    StreamerIn,
    StreamerOut,
    StreamerPatch,
    VerificationIn,
)
from questline.tenancy.auth import (
    BRAND,
    CLIENT,
    IDEMPOTENCY_HEADER,
    SERVER,
    STREAMER,
    Caller,
    ServerOrAdmin,
    ServerOrViewer,
    allow,
)
from questline.tenancy.schemas import Role

router = APIRouter(prefix="/v1", tags=["marketplace accounts"], route_class=UnitOfWorkRoute)
Paging = Annotated[PageParams, Depends(page_params)]
BrandId = Annotated[str, Path(pattern=ID_PATTERN, description="a brand's id (brd_…)")]
StreamerId = Annotated[str, Path(pattern=ID_PATTERN, description="a streamer's id (str_…)")]
MemberId = Annotated[str, Path(pattern=ID_PATTERN, description="a brand member's id (mbr_…)")]
# Sign-up and sign-in come from the platform's own pages (its publishable client key) or its server.
Public = Annotated[Caller, allow(CLIENT, SERVER, admin_role=Role.ADMIN)]
SignIn = Annotated[Caller, allow(CLIENT, SERVER)]
BrandSide = Annotated[Caller, allow(SERVER, BRAND, admin_role=Role.ADMIN)]
BrandReader = Annotated[Caller, allow(SERVER, BRAND, admin_role=Role.VIEWER)]
StreamerSide = Annotated[Caller, allow(SERVER, STREAMER, admin_role=Role.ADMIN)]
StreamerReader = Annotated[Caller, allow(SERVER, STREAMER, admin_role=Role.VIEWER)]
Depositor = Annotated[Caller, allow(SERVER, admin_role=Role.ADMIN, idempotency="required")]
RequiredKey = Annotated[str, Header(alias=IDEMPOTENCY_HEADER, description="one key per deposit; a retry reuses it")]


@router.get("/marketplace/settings", response_model=MarketSettings, tags=["marketplace settings"])
async def get_settings(caller: ServerOrViewer, session: SessionDep) -> MarketSettings:
    """The app's marketplace rules: G-Key categories, energy, cooloff, commission, impression limits."""
    return await service.market_settings(session, caller.app)


@router.put("/marketplace/settings", response_model=MarketSettings, tags=["marketplace settings"])
async def put_settings(body: MarketSettings, caller: ServerOrAdmin, session: SessionDep,
                       clock: ClockDep) -> MarketSettings:
    """Replace the app's marketplace rules (running campaigns keep the commission they started with)."""
    return await service.put_market_settings(session, clock, caller.app, body)


# Brands ---------------------------------------------------------------------------------------


@router.post("/brands", response_model=BrandOut, status_code=201,
             responses={409: {"description": "email_taken"}})
async def create_brand(body: BrandIn, caller: Public, session: SessionDep, clock: ClockDep) -> BrandOut:
    """Sign a brand up with its first member (an owner, who signs in with e-mail and password)."""
    return await service.create_brand(session, clock, caller.app, body)


@router.post("/brands/login", response_model=AccountToken, responses={401: {"description": "invalid_credentials"}})
async def brand_login(body: LoginIn, caller: SignIn, session: SessionDep, runtime: RuntimeDep) -> AccountToken:
    """A brand member's sign-in: a token that acts for their brand (and nothing else)."""
    return await service.login_brand(session, runtime, caller.app, body.email, body.password)


@router.get("/brands", response_model=Page[BrandOut])
async def list_brands(caller: ServerOrViewer, session: SessionDep, paging: Paging) -> Page[BrandOut]:
    return await service.list_brands(session, caller.app, paging)


@router.get("/brands/{brand_id}", response_model=BrandOut)
async def get_brand(brand_id: BrandId, caller: BrandReader, session: SessionDep) -> BrandOut:
    return service.brand_out(await service.authorize_brand(session, caller, brand_id))


@router.patch("/brands/{brand_id}", response_model=BrandOut)
async def update_brand(brand_id: BrandId, body: BrandPatch, caller: BrandSide, session: SessionDep,
                       clock: ClockDep) -> BrandOut:
    """Change the brand's profile (its owners, the server key or an app admin)."""
    return await service.update_brand(session, clock, caller, brand_id, body)


@router.get("/brands/{brand_id}/members", response_model=list[MemberOut])
async def list_members(brand_id: BrandId, caller: BrandReader, session: SessionDep) -> list[MemberOut]:
    return await service.list_members(session, caller, brand_id)


@router.post("/brands/{brand_id}/members", response_model=MemberOut, status_code=201)
async def add_member(brand_id: BrandId, body: MemberIn, caller: BrandSide, session: SessionDep,
                     clock: ClockDep) -> MemberOut:
    """Add a person who signs in for the brand (its owners, the server key or an app admin)."""
    return await service.add_member(session, clock, caller, brand_id, body)


@router.post("/brands/{brand_id}/members/{member_id}/remove", response_model=MemberOut,
             responses={409: {"description": "last_owner, member_removed"}})
async def remove_member(brand_id: BrandId, member_id: MemberId, caller: BrandSide, session: SessionDep,
                        clock: ClockDep) -> MemberOut:
    """Remove a member: their sign-in stops working at once (a brand keeps at least one owner)."""
    return await service.remove_member(session, clock, caller, brand_id, member_id)


@router.get("/brands/{brand_id}/wallet", response_model=WalletOut, tags=["wallets"])
async def brand_wallet(brand_id: BrandId, caller: BrandReader, session: SessionDep) -> WalletOut:
    """The brand's money per currency: available, held (campaign budgets) and pending."""
    return await service.brand_wallet(session, caller, brand_id)


@router.post("/brands/{brand_id}/wallet/deposits", response_model=TransactionOut, status_code=201, tags=["wallets"])
async def deposit(brand_id: BrandId, body: DepositIn, caller: Depositor, session: SessionDep, clock: ClockDep,
                  idempotency_key: RequiredKey, response: Response) -> TransactionOut:
    """Record money a brand paid in (server key or app admin; ``Idempotency-Key`` required).

    A trusted statement that the money arrived; payment providers come later. A retry with the
    same key posts nothing new.
    """
    txn = await service.deposit_to_brand(session, clock, caller, brand_id, body, idempotency_key)
    mark_replayed(response, txn.replayed)
    return txn


@router.get("/platform/wallet", response_model=WalletOut, tags=["wallets"])
async def platform_wallet(caller: ServerOrViewer, session: SessionDep) -> WalletOut:
    """The platform's revenue: every commission booked on campaign earnings, per currency."""
    return await service.platform_wallet(session, caller.app)


# Streamers ------------------------------------------------------------------------------------


@router.post("/streamers", response_model=StreamerOut, status_code=201,
             responses={409: {"description": "email_taken, player_is_streamer"}})
async def create_streamer(body: StreamerIn, caller: Public, session: SessionDep, runtime: RuntimeDep) -> StreamerOut:
    """Sign a streamer up. They become a player of the app (``player_id``; the server key may link an
    existing one) and earn the signup rewards (10 XP and 5 RP by default) once, through progression."""
    return await service.create_streamer(session, runtime, caller, body)


@router.post("/streamers/login", response_model=AccountToken, responses={401: {"description": "invalid_credentials"}})
async def streamer_login(body: LoginIn, caller: SignIn, session: SessionDep, runtime: RuntimeDep) -> AccountToken:
    """A streamer's sign-in: a token that acts for them (and nothing else)."""
    return await service.login_streamer(session, runtime, caller.app, body.email, body.password)


@router.get("/streamers", response_model=Page[StreamerOut])
async def list_streamers(caller: ServerOrViewer, session: SessionDep, paging: Paging) -> Page[StreamerOut]:
    return await service.list_streamers(session, caller.app, paging)


@router.get("/streamers/{streamer_id}", response_model=StreamerOut)
async def get_streamer(streamer_id: StreamerId, caller: StreamerReader, session: SessionDep) -> StreamerOut:
    """The streamer's profile; bank details show masked (the last four characters)."""
    service.authorize_streamer(caller, streamer_id)
    return service.streamer_out(await service.get_streamer(session, caller.app, streamer_id))


@router.patch("/streamers/{streamer_id}", response_model=StreamerOut)
async def update_streamer(streamer_id: StreamerId, body: StreamerPatch, caller: StreamerSide, session: SessionDep,
                          runtime: RuntimeDep) -> StreamerOut:
    """What the streamer says about themself: name, content categories, channels (a changed channel goes
    back to review), bank details (sealed at rest), password."""
    return await service.update_streamer(session, runtime, caller, streamer_id, body)


@router.put("/streamers/{streamer_id}/audience", response_model=StreamerOut)
async def set_audience(streamer_id: StreamerId, body: AudienceIn, caller: ServerOrAdmin, session: SessionDep,
                       clock: ClockDep) -> StreamerOut:
    """Trusted facts campaign targeting reads: demographics and each channel's audience numbers."""
    return await service.set_audience(session, clock, caller.app, streamer_id, body)


@router.post("/streamers/{streamer_id}/platforms/{platform}/verification", response_model=StreamerOut)
async def verify_platform(streamer_id: StreamerId, platform: Annotated[Platform, Path()], body: VerificationIn,
                          caller: ServerOrAdmin, session: SessionDep, clock: ClockDep) -> StreamerOut:
    """Mark a channel verified, rejected (with a reason) or pending again (the platform's admins)."""
    return await service.set_verification(session, clock, caller.app, streamer_id, platform, body)


@router.get("/streamers/{streamer_id}/wallet", response_model=WalletOut, tags=["wallets"])
async def streamer_wallet(streamer_id: StreamerId, caller: StreamerReader, session: SessionDep) -> WalletOut:
    """The streamer's money: available (withdrawable) and pending (earned in campaigns still running)."""
    return await service.streamer_wallet(session, caller, streamer_id)

