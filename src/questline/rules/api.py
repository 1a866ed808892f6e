"""Routes for an app's definitions (stats, XP tracks and rules, …) and players' stats."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Header, Path, Query, status

from questline.kit.pagination import Page, PageParams, page_params
from questline.kit.responses import JsonResponse
from questline.kit.routing import ClockDep, RuntimeDep, SessionDep, UnitOfWorkRoute
from questline.players.schemas import PLAYER_ID_PATTERN as PLAYER_ID
from questline.rules import service
from questline.rules.schemas import Bundle, BundleResult, DefinitionOut, DefinitionVersionOut, KindOut, StatSeries
from questline.tenancy.auth import PlayerOrServer, ServerOrAdmin, ServerOrViewer

router = APIRouter(prefix="/v1", tags=["definitions"], route_class=UnitOfWorkRoute)
Paging = Annotated[PageParams, Depends(page_params)]
Kind = Annotated[str, Path(pattern=r"^[a-z_]{1,40}$", description="stat, xp_track, xp_rule, combined_level, …")]
Key = Annotated[str, Path(max_length=64)]


@router.get("/definition-kinds", response_model=list[KindOut])
async def kinds(caller: ServerOrViewer, runtime: RuntimeDep) -> list[KindOut]:
    """Every kind of definition, with its JSON Schema."""
    return [KindOut(kind=k.name, description=k.description, json_schema=k.schema.model_json_schema())
            for k in service.registry_of(runtime).all()]


@router.get("/definitions/{kind}", response_model=Page[DefinitionOut])
async def list_definitions(kind: Kind, caller: ServerOrViewer, session: SessionDep, runtime: RuntimeDep,
                           paging: Paging) -> Page[DefinitionOut]:
    page = await service.list_definitions(session, service.registry_of(runtime), caller.app, kind, paging)
    return Page[DefinitionOut](items=[DefinitionOut.model_validate(d) for d in page.items],
                               next_cursor=page.next_cursor)


@router.get("/definitions/{kind}/{key}", response_model=DefinitionOut)
async def get_definition(kind: Kind, key: Key, caller: ServerOrViewer, session: SessionDep,
                         runtime: RuntimeDep) -> DefinitionOut:
    row = await service.get_definition(session, service.registry_of(runtime), caller.app, kind, key)
    return DefinitionOut.model_validate(row)


@router.get("/definitions/{kind}/{key}/versions", response_model=Page[DefinitionVersionOut])
async def list_definition_versions(kind: Kind, key: Key, caller: ServerOrViewer, session: SessionDep,
                                   runtime: RuntimeDep, paging: Paging) -> Page[DefinitionVersionOut]:
    """Every version the definition has had, newest first (its current one included)."""
    page = await service.list_versions(session, service.registry_of(runtime), caller.app, kind, key, paging)
    return Page[DefinitionVersionOut](items=[DefinitionVersionOut.model_validate(v) for v in page.items],
                                      next_cursor=page.next_cursor)


@router.get("/definitions/{kind}/{key}/versions/{version}", response_model=DefinitionVersionOut)
async def get_definition_version(kind: Kind, key: Key, version: Annotated[int, Path(ge=1)], caller: ServerOrViewer,
                                 session: SessionDep, runtime: RuntimeDep) -> DefinitionVersionOut:
    """One version of the definition, as it was saved."""
    row = await service.get_version(session, service.registry_of(runtime), caller.app, kind, key, version)
    return DefinitionVersionOut.model_validate(row)


@router.put("/definitions/{kind}/{key}", response_model=DefinitionOut,
            responses={201: {"model": DefinitionOut}, 412: {"description": "If-Match version differs"}})
async def put_definition(
    kind: Kind, key: Key, caller: ServerOrAdmin, session: SessionDep, clock: ClockDep, runtime: RuntimeDep,
    body: Annotated[dict[str, Any], Body(description="the kind's schema (see /v1/definition-kinds)")],
    if_match: Annotated[int | None, Header(description="only if the stored version is this")] = None,
) -> JsonResponse:
    """Create or replace a definition. It is validated and cross-checked; the version goes up."""
    row, created = await service.put_definition(session, clock, service.registry_of(runtime), caller.app, kind, key,
                                                body, expected_version=if_match)
    out = DefinitionOut.model_validate(row).model_dump(mode="json")
    return JsonResponse(out, status_code=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


@router.delete("/definitions/{kind}/{key}", status_code=204)
async def delete_definition(kind: Kind, key: Key, caller: ServerOrAdmin, session: SessionDep,
                            runtime: RuntimeDep) -> None:
    """Delete a definition that nothing else refers to."""
    await service.delete_definition(session, service.registry_of(runtime), caller.app, kind, key)


@router.post("/definitions:bulk", response_model=BundleResult)
async def apply_bundle(body: Bundle, caller: ServerOrAdmin, session: SessionDep, clock: ClockDep,
                       runtime: RuntimeDep) -> BundleResult:
    """Apply a whole configuration (as ``questline config load`` does): all valid, or nothing changes."""
    return await service.apply_bundle(session, clock, service.registry_of(runtime), caller.app, body)


@router.get("/stats/{stat}/totals", response_model=StatSeries, responses={404: {"description": "definition_not_found"}})
async def stat_totals(
    stat: Key, caller: ServerOrViewer, session: SessionDep, runtime: RuntimeDep,
    period: Annotated[Literal["day", "week", "month"], Query()] = "day",
    limit: Annotated[int, Query(ge=1, le=366, description="how many of the latest periods")] = 30,
) -> StatSeries:
    """A stat added up over every player, per day, week or month (each player's own calendar), oldest
    first: a ``count`` stat of an event type is that event over time."""
    return await service.stat_series(session, service.registry_of(runtime), caller.app, stat, period, limit)


@router.get("/players/{player_id}/stats", response_model=dict[str, dict[str, int]])
async def player_stats(
    player_id: Annotated[str, Path(pattern=PLAYER_ID)], caller: PlayerOrServer, session: SessionDep,
    runtime: RuntimeDep,
    at: Annotated[str | None, Query(description="periods containing this instant (default: now)")] = None,
) -> dict[str, dict[str, int]]:
    """The player's stats for the current day, week and month (in their time zone) and all time."""
    caller.ensure_acts_for(player_id)
    return await service.player_stats(session, runtime, caller.app, player_id, at)
