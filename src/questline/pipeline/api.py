"""Routes for sending events and reading the log and the outbox."""

from __future__ import annotations

import json
from functools import partial
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Body, Depends, Path, Query
from fastapi.responses import Response

from questline.kit.fastlane import FastLane, LaneAnswer, LaneCall, LaneHandler
from questline.kit.pagination import Page, PageParams, page_params
from questline.kit.routing import (
    PER_ITEM_JSON,
    ClockDep,
    ExposedRoute,
    RuntimeDep,
    SessionDep,
    UnitOfWorkRoute,
    is_json_body,
)
from questline.pipeline import ingest as service
from questline.pipeline.schemas import PLAYER_ID, EventOut, IngestResult, Retention
from questline.tenancy.auth import (
    CLIENT,
    IDEMPOTENCY_HEADER,
    PLAYER,
    SERVER,
    Caller,
    PlayerOrServer,
    ServerOrViewer,
    allow,
    enforce_limits,
    identify_caller,
    lane_policy,
)
from questline.tenancy.schemas import Role

router = APIRouter(prefix="/v1", tags=["events"], route_class=UnitOfWorkRoute)
Paging = Annotated[PageParams, Depends(page_params)]

_EXAMPLE = {"id": "evt-1001", "player_id": "alice", "type": "match.won", "data": {"score": 1200},
            "timestamp": "2026-03-10T12:00:00Z"}


def _json_bytes(model: IngestResult) -> bytes:
    return orjson.dumps(model.model_dump(mode="json", exclude_none=True))


def _json(model: IngestResult, status: int) -> Response:
    return Response(_json_bytes(model), status_code=status, media_type="application/json")


@router.post(
    "/events", response_model=IngestResult, status_code=202,
    responses={200: {"model": IngestResult, "description": "with ?wait=true: processed, effects listed"}},
    openapi_extra={"requestBody": {"content": {"application/json": {"example": {"events": [_EXAMPLE]}}}},
                   **PER_ITEM_JSON, "x-audit": False},
)
async def send_events(
    caller: Annotated[Caller, allow(SERVER, CLIENT, PLAYER, admin_role=Role.ADMIN)],
    runtime: RuntimeDep,
    body: Annotated[Any, Body(description="one event, a list, or {\"events\": [...]} (at most 1000)")],
    wait: Annotated[bool, Query(description="answer once the effects are committed, listing them")] = False,
) -> Response:
    """Send one event or a batch. Duplicates (same ``id``) are acknowledged and ignored.

    Refused events are listed with a reason; the rest go through. Server keys are trusted; a
    game client sends its player's events with that player's token (the publishable client key
    cannot vouch for a player), limited to the app's client-allowed types, within size,
    time-window and per-player rate bounds. The reply comes once the events are durable.
    """
    ingested = await service.ingest(runtime, caller, body, want_seqs=wait)
    if not wait:
        return _json(ingested.result, 202)
    done, effects = await service.wait_for_effects(runtime, caller.app, ingested.seqs,
                                                   event_ids=ingested.event_ids)
    result = ingested.result.model_copy(update={"processed": done, "effects": effects if done else None})
    return _json(result, 200 if done else 202)


def fast_routes(lane: FastLane) -> None:
    """``POST /v1/events`` answered in the fast lane (``kit.fastlane``), through the same service."""
    lane.post("/v1/events", _fast_send)


def _fast_send(route: ExposedRoute) -> LaneHandler:
    policy = lane_policy(route)

    async def handler(call: LaneCall) -> LaneAnswer | None:
        request, runtime = call.request, call.runtime
        # Left to the route: waiting for effects, idempotency keys, bodies that are not JSON.
        if call.params["wait"] or IDEMPOTENCY_HEADER in request.headers or not is_json_body(request):
            return None
        caller = await identify_caller(request, runtime, policy)
        raw = await call.body()
        if not raw:
            return None
        try:
            body = json.loads(raw)  # the route's parser (orjson reads big integers as floats)
        except (ValueError, RecursionError):
            return None  # the route says what is wrong, in its words
        await call.admit(partial(enforce_limits, runtime, caller))
        ingested = await service.ingest(runtime, caller, body)
        return LaneAnswer(_json_bytes(ingested.result), status=202)

    return handler


@router.get("/players/{player_id}/events", response_model=Page[EventOut])
async def player_events(player_id: Annotated[str, Path(pattern=PLAYER_ID)], caller: PlayerOrServer,
                        session: SessionDep, paging: Paging) -> Page[EventOut]:
    """A player's events, newest first."""
    caller.ensure_acts_for(player_id)
    page = await service.player_events(session, caller.app, player_id, paging)
    return Page[EventOut](items=[EventOut.model_validate(e) for e in page.items], next_cursor=page.next_cursor)


@router.get("/outbox", response_model=Page[dict[str, Any]])
async def outbox(caller: ServerOrViewer, session: SessionDep, paging: Paging) -> Page[dict[str, Any]]:
    """Domain events (xp.earned, level.up, points.credited, stat.changed, …) in commit order."""
    return await service.outbox(session, caller.app, paging)


@router.get("/events/retention", response_model=Retention)
async def retention(
    caller: ServerOrViewer, session: SessionDep, clock: ClockDep,
    weeks: Annotated[int, Query(ge=1, le=26, description="how many weekly cohorts, this week included")] = 8,
) -> Retention:
    """Weekly cohort retention: the players first seen in each of the last ``weeks`` UTC weeks, and how many
    of them sent an event in that week and each one after it."""
    return await service.retention(session, caller.app, clock.now(), weeks)
