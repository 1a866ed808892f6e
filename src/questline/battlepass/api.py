"""Routes for seasons, a player's pass progress, premium, tier boosts and reward claims."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path

from questline.battlepass import service
from questline.battlepass.schemas import BoostIn, ClaimIn, ClaimOut, PassOut, PremiumIn, ProgressOut, SeasonOut
from questline.kit.routing import RuntimeDep, SessionDep, UnitOfWorkRoute
from questline.players.schemas import PLAYER_ID_PATTERN
from questline.rules.schemas import DEFINITION_KEY
from questline.rules.service import ruleset_cache
from questline.tenancy.auth import PLAYER, SERVER, AnyAppCaller, Caller, PlayerOrServer, allow

router = APIRouter(prefix="/v1", tags=["battle pass"], route_class=UnitOfWorkRoute)
PlayerId = Annotated[str, Path(pattern=PLAYER_ID_PATTERN, description="your own id for the player")]
SeasonKey = Annotated[str, Path(pattern=DEFINITION_KEY, description="the battle_pass definition's key")]
# The player for themself, or the server key for any player; a retried purchase must not buy twice.
Buyer = Annotated[Caller, allow(SERVER, PLAYER, idempotency="required")]
_REFUSALS: dict[int | str, dict[str, Any]] = {403: {"description": "premium_required, server_key_required, gated"},
             404: {"description": "season_not_found, reward_not_found, player_not_found"},
             409: {"description": "tier_not_reached, already_claimed, already_premium, season_not_active, "
                                  "insufficient_funds, max_tier_reached"}}


@router.get("/battle-passes", response_model=list[SeasonOut])
async def seasons(caller: AnyAppCaller, session: SessionDep, runtime: RuntimeDep) -> list[SeasonOut]:
    """Every season of the app, oldest first; ``featured`` marks the current one."""
    ruleset = await ruleset_cache(runtime).get(session, caller.app)
    return service.list_seasons(ruleset, runtime.clock.now())


@router.get("/players/{player_id}/battle-pass", response_model=ProgressOut)
async def featured_progress(player_id: PlayerId, caller: PlayerOrServer, session: SessionDep,
                            runtime: RuntimeDep) -> ProgressOut:
    """The player's progress in the featured season: tier, XP in tier, rewards claimable per track."""
    caller.ensure_acts_for(player_id)
    ruleset = await ruleset_cache(runtime).get(session, caller.app)
    return await service.progress(session, runtime.clock, ruleset, caller.app, player_id, None)


@router.get("/players/{player_id}/battle-pass/{season}", response_model=ProgressOut)
async def season_progress(player_id: PlayerId, season: SeasonKey, caller: PlayerOrServer, session: SessionDep,
                          runtime: RuntimeDep) -> ProgressOut:
    caller.ensure_acts_for(player_id)
    ruleset = await ruleset_cache(runtime).get(session, caller.app)
    return await service.progress(session, runtime.clock, ruleset, caller.app, player_id, season)


@router.post("/players/{player_id}/battle-pass/{season}/premium", response_model=PassOut, status_code=201,
             responses=_REFUSALS)
async def buy_premium(player_id: PlayerId, season: SeasonKey, caller: Buyer, session: SessionDep,
                      runtime: RuntimeDep, body: PremiumIn | None = None) -> PassOut:
    """Unlock premium: paid with points (``premium_price``), or ``{"paid_externally": true}`` from the
    server key after a cash sale. ``Idempotency-Key`` required."""
    caller.ensure_acts_for(player_id)
    ruleset = await ruleset_cache(runtime).get(session, caller.app)
    return await service.buy_premium(session, runtime, ruleset, caller.app, player_id, season, body or PremiumIn(),
                                     trusted=caller.kind is SERVER)


@router.post("/players/{player_id}/battle-pass/{season}/boost", response_model=PassOut, status_code=201,
             responses=_REFUSALS)
async def buy_boost(player_id: PlayerId, season: SeasonKey, caller: Buyer, session: SessionDep, runtime: RuntimeDep,
                    body: BoostIn | None = None) -> PassOut:
    """Buy tier boosts at ``tier_boost_price`` each (fewer near the top tier). ``Idempotency-Key`` required."""
    caller.ensure_acts_for(player_id)
    ruleset = await ruleset_cache(runtime).get(session, caller.app)
    return await service.buy_boost(session, runtime, ruleset, caller.app, player_id, season, (body or BoostIn()).tiers)


@router.post("/players/{player_id}/battle-pass/{season}/claim", response_model=ClaimOut, status_code=201,
             responses=_REFUSALS)
async def claim(player_id: PlayerId, season: SeasonKey, body: ClaimIn, caller: Buyer, session: SessionDep,
                runtime: RuntimeDep) -> ClaimOut:
    """Claim a tier's reward on the free or premium track, once. ``Idempotency-Key`` required."""
    caller.ensure_acts_for(player_id)
    ruleset = await ruleset_cache(runtime).get(session, caller.app)
    return await service.claim(session, runtime, ruleset, caller.app, player_id, season, body.tier, body.track)
