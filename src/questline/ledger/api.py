"""Routes for currencies, grants and spends, admin adjustments, balances, history and holds."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Path, Query, Response

from questline.kit.idempotency import mark_replayed
from questline.kit.pagination import PageParams, page_params
from questline.kit.routing import ClockDep, SessionDep, UnitOfWorkRoute
from questline.ledger import service
from questline.ledger.schemas import (
    CURRENCY_PATTERN,
    AdjustmentIn,
    BalancesOut,
    CurrencyIn,
    CurrencyOut,
    GrantIn,
    HistoryOut,
    HoldIn,
    HoldOut,
    SpendIn,
    TransactionOut,
)
from questline.players.schemas import PLAYER_ID_PATTERN
from questline.tenancy.auth import (
    IDEMPOTENCY_HEADER,
    SERVER,
    AnyAppCaller,
    Caller,
    PlayerOrServer,
    ServerOrAdmin,
    ServerOrViewer,
    allow,
)
from questline.tenancy.schemas import Role

router = APIRouter(prefix="/v1", tags=["ledger"], route_class=UnitOfWorkRoute)
PlayerId = Annotated[str, Path(pattern=PLAYER_ID_PATTERN, description="your own id for the player")]
Code = Annotated[str, Path(pattern=CURRENCY_PATTERN, description="e.g. points, gems")]
HoldId = Annotated[str, Path(max_length=40)]
RequiredKey = Annotated[str, Header(alias=IDEMPOTENCY_HEADER, description="one key per posting; a retry reuses it")]
OptionalKey = Annotated[str | None, Header(alias=IDEMPOTENCY_HEADER, description="makes a retried hold safe")]
ServerWithKey = Annotated[Caller, allow(SERVER, idempotency="required")]
AdminWithKey = Annotated[Caller, allow(admin_role=Role.ADMIN, idempotency="required")]
ServerOnly = Annotated[Caller, allow(SERVER)]


@router.put("/currencies/{code}", response_model=CurrencyOut,
            responses={201: {"model": CurrencyOut, "description": "created"}})
async def put_currency(code: Code, body: CurrencyIn, *, caller: ServerOrAdmin, session: SessionDep, clock: ClockDep,
                       response: Response) -> CurrencyOut:
    """Create a currency of the app (201) or rename it (200).

    Lowercase codes are points; three capitals are money with ISO 4217 minor units (USD, EUR, GBP 2,
    JPY 0); a code this engine does not know needs its ``exponent``.
    """
    currency, created = await service.put_currency(session, clock, caller.app, code, body.name, body.exponent)
    response.status_code = 201 if created else 200
    return currency


@router.get("/currencies", response_model=list[CurrencyOut])
async def list_currencies(caller: AnyAppCaller, session: SessionDep) -> list[CurrencyOut]:
    return await service.list_currencies(session, caller.app)


@router.post("/ledger/grants", response_model=TransactionOut, status_code=201)
async def grant(body: GrantIn, caller: ServerWithKey, session: SessionDep, clock: ClockDep,
                idempotency_key: RequiredKey, response: Response) -> TransactionOut:
    """Give a player currency (server key). The Idempotency-Key makes a retried grant post once."""
    txn = await service.credit_player(
        session, clock, app_id=caller.app, player_id=body.player_id, currency=body.currency, amount=body.amount,
        idempotency_key=idempotency_key, source=body.source, reference=body.reference,
        description=body.description,
    )
    mark_replayed(response, txn.replayed)
    return txn


@router.post("/ledger/spends", response_model=TransactionOut, status_code=201,
             responses={409: {"description": "insufficient_funds: {required, current, shortfall}"}})
async def spend(body: SpendIn, caller: ServerWithKey, session: SessionDep, clock: ClockDep,
                idempotency_key: RequiredKey, response: Response) -> TransactionOut:
    """Take currency from a player (server key); never below zero."""
    txn = await service.debit_player(
        session, clock, app_id=caller.app, player_id=body.player_id, currency=body.currency, amount=body.amount,
        idempotency_key=idempotency_key, source=body.source, reference=body.reference,
        description=body.description,
    )
    mark_replayed(response, txn.replayed)
    return txn


@router.post("/ledger/adjustments", response_model=TransactionOut, status_code=201)
async def adjust(body: AdjustmentIn, caller: AdminWithKey, session: SessionDep, clock: ClockDep,
                 idempotency_key: RequiredKey, response: Response) -> TransactionOut:
    """Correct a player's balance by hand (app admins); the admin and the reason are recorded."""
    assert caller.admin_id is not None
    txn = await service.adjust_player(
        session, clock, app_id=caller.app, player_id=body.player_id, currency=body.currency, amount=body.amount,
        reason=body.reason, actor=caller.admin_id, idempotency_key=idempotency_key,
    )
    mark_replayed(response, txn.replayed)
    return txn


@router.get("/players/{player_id}/balances", response_model=BalancesOut)
async def balances(player_id: PlayerId, caller: PlayerOrServer, session: SessionDep) -> BalancesOut:
    caller.ensure_acts_for(player_id)
    return await service.balances_of(session, caller.app, player_id)


@router.get("/players/{player_id}/transactions", response_model=HistoryOut)
async def history(player_id: PlayerId, caller: PlayerOrServer, session: SessionDep,
                  paging: Annotated[PageParams, Depends(page_params)],
                  currency: Annotated[str | None, Query(pattern=CURRENCY_PATTERN)] = None) -> HistoryOut:
    """The player's transactions, newest first, with earned/spent totals per currency."""
    caller.ensure_acts_for(player_id)
    return await service.player_history(session, caller.app, player_id, currency, paging)


@router.post("/ledger/holds", response_model=HoldOut, status_code=201,
             responses={409: {"description": "insufficient_funds: {required, current, shortfall}"}})
async def create_hold(body: HoldIn, caller: ServerOnly, session: SessionDep, clock: ClockDep,
                      idempotency_key: OptionalKey = None) -> HoldOut:
    """Reserve a player's currency for a purchase; commit or release it before ``ttl_seconds`` run out."""
    return await service.create_hold(
        session, clock, app_id=caller.app, player_id=body.player_id, currency=body.currency, amount=body.amount,
        ttl_seconds=body.ttl_seconds, idempotency_key=idempotency_key, reference=body.reference,
    )


@router.get("/ledger/holds/{hold_id}", response_model=HoldOut)
async def get_hold(hold_id: HoldId, caller: ServerOrViewer, session: SessionDep) -> HoldOut:
    return await service.get_hold(session, caller.app, hold_id)


@router.post("/ledger/holds/{hold_id}/commit", response_model=HoldOut,
             responses={409: {"description": "hold_not_active or hold_expired"}})
async def commit_hold(hold_id: HoldId, caller: ServerOnly, session: SessionDep, clock: ClockDep) -> HoldOut:
    """Complete the purchase: the held currency is spent. Works once."""
    return await service.commit_hold(session, clock, app_id=caller.app, hold_id=hold_id)


@router.post("/ledger/holds/{hold_id}/release", response_model=HoldOut,
             responses={409: {"description": "hold_not_active"}})
async def release_hold(hold_id: HoldId, caller: ServerOnly, session: SessionDep, clock: ClockDep) -> HoldOut:
    """Abandon the purchase: the held currency goes back to the player. Works once."""
    return await service.release_hold(session, clock, app_id=caller.app, hold_id=hold_id)
