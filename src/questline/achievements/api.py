"""Routes for the achievement catalog, a player's achievements, grants, badge uploads and badge files."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Path, Response, UploadFile
from fastapi.responses import FileResponse

from questline.achievements import service
from questline.achievements.schemas import Badge, Catalog, GrantIn, GrantOut, PlayerAchievements
from questline.kit.routing import ClockDep, RuntimeDep, SessionDep, UnitOfWorkRoute
from questline.players.schemas import PLAYER_ID_PATTERN as PLAYER_ID
from questline.rules.schemas import DEFINITION_KEY
from questline.rules.service import ruleset_cache
from questline.tenancy.auth import SERVER, AnyAppCaller, Caller, PlayerOrServer, ServerOrAdmin, allow
from questline.tenancy.schemas import Role

router = APIRouter(prefix="/v1", tags=["achievements"], route_class=UnitOfWorkRoute)
PlayerId = Annotated[str, Path(pattern=PLAYER_ID)]
AchievementKey = Annotated[str, Path(pattern=DEFINITION_KEY, description="the achievement definition's key")]
# The server key or an app admin; a retried grant must not announce or pay twice.
Granter = Annotated[Caller, allow(SERVER, admin_role=Role.ADMIN, idempotency="required")]
# Secret-looking SVG content is refused at upload; this is the second line of defence when served.
_MEDIA_HEADERS = {
    "Cache-Control": "public, max-age=31536000, immutable",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; sandbox",
}


@router.get("/achievements", response_model=Catalog)
async def catalog(caller: AnyAppCaller, session: SessionDep, runtime: RuntimeDep) -> Catalog:
    """Every achievement with its rarity (% of the app's players who have it).

    Secret and hidden achievements are listed only for the server key and app admins.
    """
    return await service.catalog(session, runtime, caller.app, reveal=caller.is_trusted)


@router.get("/players/{player_id}/achievements", response_model=PlayerAchievements)
async def player_achievements(player_id: PlayerId, caller: PlayerOrServer, session: SessionDep,
                              runtime: RuntimeDep) -> PlayerAchievements:
    """The player's achievements: unlocked or not, progress toward each, secrets masked until unlocked."""
    caller.ensure_acts_for(player_id)
    return await service.player_achievements(session, runtime, caller.app, player_id)


@router.post("/players/{player_id}/achievements/{key}/grant", response_model=GrantOut, status_code=201,
             responses={200: {"model": GrantOut, "description": "the player already had it (granted: false)"},
                        404: {"description": "achievement_not_found"}})
async def grant(player_id: PlayerId, key: AchievementKey, caller: Granter, session: SessionDep, clock: ClockDep,
                runtime: RuntimeDep, response: Response, body: GrantIn | None = None) -> GrantOut:
    """Award an achievement to a player (server key or app admin; ``Idempotency-Key`` required).

    201 with ``granted: true`` when this call awarded it (announced as ``achievement.unlocked`` with
    ``source: "grant"``, ``points_reward`` paid once); 200 with ``granted: false`` when the player
    already had it. Works for any achievement; grant-only ones (no ``criteria``) are awarded only so.
    """
    ruleset = await ruleset_cache(runtime).get(session, caller.app)
    out = await service.grant_by_request(session, clock, ruleset, caller.app, player_id, key, body or GrantIn(),
                                         caller.identity)
    response.status_code = 201 if out.granted else 200
    return out


@router.post("/achievements/{key}/badge", response_model=Badge, status_code=201,
             responses={413: {"description": "payload_too_large: over 5 MiB"},
                        415: {"description": "unsupported_media_type: not PNG or SVG"},
                        422: {"description": "image_too_large, invalid_image, invalid_svg, unsafe_svg, empty_file"}})
async def upload_badge(
    key: AchievementKey, caller: ServerOrAdmin, session: SessionDep, runtime: RuntimeDep,
    file: Annotated[UploadFile, File(description="a PNG (at most 4096×4096) or SVG, up to 5 MiB")],
) -> Badge:
    """Upload (or replace) an achievement's badge image; a PNG also gets a 256×256 thumbnail.

    Each upload is a new version with its own URL; earlier versions' files are kept.
    """
    data = await file.read()
    return await service.upload_badge(session, runtime, caller.app, key, data, caller.identity)


@router.get("/media/badges/{app_id}/{key}/{filename}", openapi_extra={"x-access": "anonymous"},
                  response_class=FileResponse, responses={200: {"content": {"image/png": {}, "image/svg+xml": {}}}})
async def badge_file(app_id: str, key: str, filename: str, runtime: RuntimeDep) -> FileResponse:
    """A badge image or thumbnail, as linked from achievement responses (public, cacheable forever)."""
    path, content_type = service.media_file(runtime, app_id, key, filename)
    return FileResponse(path, media_type=content_type, headers=_MEDIA_HEADERS)
