"""Routes for trusted XP awards and a player's recent XP activity."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response

from questline.kit.routing import DeferredResponse, RuntimeDep, SessionDep, UnitOfWorkRoute
from questline.pipeline import ingest as events
from questline.players.schemas import PLAYER_ID_PATTERN as PLAYER_ID
from questline.progression import service
from questline.progression.schemas import TrackDistribution, XpAward, XpAwardResult
from questline.rules.service import ruleset_cache
from questline.tenancy.auth import IDEMPOTENCY_HEADER, SERVER, Caller, PlayerOrServer, ServerOrViewer, allow
from questline.tenancy.schemas import Role

router = APIRouter(prefix="/v1/players", tags=["progression"], route_class=UnitOfWorkRoute)
# App-wide reads over every player's progression (admin dashboards, the console's charts).
tracks_router = APIRouter(prefix="/v1/progression", tags=["progression"], route_class=UnitOfWorkRoute)
PlayerId = Annotated[str, Path(pattern=PLAYER_ID)]
TrackKey = Annotated[str, Path(min_length=1, max_length=64)]


@router.post("/{player_id}/xp", response_model=XpAwardResult)
async def award_xp(
    player_id: PlayerId, body: XpAward, request: Request, session: SessionDep, runtime: RuntimeDep,
    caller: Annotated[Caller, allow(SERVER, admin_role=Role.ADMIN, idempotency="required")],
) -> Response:
    """Award XP on a track (server key or app admin; ``Idempotency-Key`` required).

    The award is written to the event log and processed like any event, so level-ups,
    rewards and replays behave the same; the reply waits for the effects.
    """
    ruleset = await ruleset_cache(runtime).get(session, caller.app)
    key = request.headers[IDEMPOTENCY_HEADER]
    seqs = await service.queue_award(session, runtime, ruleset, caller.app, player_id, body, key)

    async def reply() -> Response:
        done, effects = await events.wait_for_effects(runtime, caller.app, seqs)
        result = service.summarize_award(player_id, body, done, effects)
        return Response(orjson.dumps(result.model_dump()), status_code=200 if done else 202,
                        media_type="application/json")

    return DeferredResponse(reply)


@router.get("/{player_id}/activity", response_model=list[dict[str, Any]])
async def activity(player_id: PlayerId, caller: PlayerOrServer, session: SessionDep) -> list[dict[str, Any]]:
    """The player's last 50 XP grants, newest first."""
    caller.ensure_acts_for(player_id)
    rows = await service.recent_activity(session, caller.app, player_id)
    return [{"track": r.track, "source": r.source, "amount": r.amount, "event_id": r.event_id,
             "occurred_at": r.occurred_at.isoformat()} for r in rows]


@tracks_router.get("/tracks/{track}/distribution", response_model=TrackDistribution,
                   responses={404: {"description": "definition_not_found"}})
async def track_distribution(
    track: TrackKey, caller: ServerOrViewer, session: SessionDep, runtime: RuntimeDep,
    buckets: Annotated[int, Query(ge=1, le=50, description="how many equal-width XP buckets")] = 10,
) -> TrackDistribution:
    """How many players who earned XP on the track are at each level, and in each XP bucket."""
    ruleset = await ruleset_cache(runtime).get(session, caller.app)
    return await service.distribution(session, ruleset, caller.app, track, buckets)
